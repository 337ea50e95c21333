"""A real OpenAI-compatible streaming server on loopback, scriptable per test.

It speaks ``POST /v1/chat/completions`` with ``"stream": true`` over HTTP/1.1 (chunked SSE:
``data: {...}`` events and ``data: [DONE]``), the way vLLM, Ollama and llama.cpp's server do.
Each request takes the next :class:`Script` (the last one repeats) and is recorded as a
:class:`Call`: the headers and body it got, when each token went out, and when the client
closed the connection. While the server waits (per-token delay, a hang before the first
token, a pause gate) it watches the socket, so a client that hangs up is noticed at once:
``Call.client_closed_at`` is a :func:`time.monotonic` reading comparable with the test's own.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    """What the server does for one request."""

    tokens: list[str] = field(default_factory=lambda: ["Hello", " there", "!"])
    delay: float = 0.0  # seconds before each token after the first
    first_delay: float = 0.0  # seconds after the headers before the first token (a hang)
    status: int = 200  # anything else: an error answer with ``error_body``
    error_body: Any = None  # JSON-able, or a str sent as text/plain
    pause_after: int | None = None  # stop after this many tokens until ``resume`` is set
    disconnect_after: int | None = None  # drop the connection after this many tokens
    raw_before: list[str] = field(default_factory=list)  # raw SSE lines sent before the tokens
    done: bool = True  # send the finish chunk and [DONE]
    resume: threading.Event = field(default_factory=threading.Event)


@dataclass
class Call:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    script: Script
    received_at: float
    sent_at: list[float] = field(default_factory=list)  # monotonic time of each token sent
    client_closed_at: float | None = None
    completed: bool = False  # every token, the finish chunk and [DONE] went out
    closed: threading.Event = field(default_factory=threading.Event)  # the client hung up
    ended: threading.Event = field(default_factory=threading.Event)  # the handler is done
    paused: threading.Event = field(default_factory=threading.Event)  # waiting at pause_after

    @property
    def tokens_pending(self) -> int:
        """Tokens of the script not sent (yet)."""
        return len(self.script.tokens) - len(self.sent_at)


class ClientGone(Exception):
    """The client closed the connection."""


class OpenAIServer:
    """Start with :meth:`start`; ``base_url`` is then ``http://127.0.0.1:<port>/v1``."""

    def __init__(self) -> None:
        self.scripts: deque[Script] = deque()
        self.calls: list[Call] = []
        self._last = Script()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """API root to give the client."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *scripts: Script) -> None:
        """Queue what the next requests get (the last one repeats)."""
        with self._lock:
            self.scripts.extend(scripts)

    def start(self) -> OpenAIServer:
        """Listen on an ephemeral loopback port in a background thread."""
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake any waiting handler and close the socket."""
        self._stopping.set()
        for call in self.calls:
            call.script.resume.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _next_script(self) -> Script:
        with self._lock:
            if self.scripts:
                self._last = self.scripts.popleft()
            return self._last


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: OpenAIServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    def do_POST(self) -> None:
        self.close_connection = True
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        script = self.owner._next_script()
        call = Call(
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            script=script,
            received_at=time.monotonic(),
        )
        self.owner.calls.append(call)
        try:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._answer(404, {"error": {"message": f"no route {self.path}"}})
            elif script.status != 200:
                self._answer(script.status, script.error_body)
            else:
                self._stream(call)
        except ClientGone:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self._gone(call)
        finally:
            call.ended.set()

    # --- responses ------------------------------------------------------------------------

    def _answer(self, status: int, body: Any) -> None:
        if isinstance(body, str):
            data, kind = body.encode(), "text/plain"
        else:
            data, kind = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, call: Call) -> None:
        script = call.script
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        model = call.body.get("model", "test")
        for line in script.raw_before:
            self._chunk(line + "\n\n")
        self._event(_chunk(model, {"role": "assistant"}))
        self._wait(call, script.first_delay)
        for i, token in enumerate(script.tokens):
            if i == script.disconnect_after:
                self._drop()
                return
            if i == script.pause_after:
                call.paused.set()
                self._wait(call, None, gate=script.resume)
            elif i:
                self._wait(call, script.delay)
            # Counted before the write: the client may act on the token (release a phrase and
            # read tokens_pending) before this thread runs again after writing it.
            call.sent_at.append(time.monotonic())
            self._event(_chunk(model, {"content": token}))
        if script.disconnect_after is not None and script.disconnect_after >= len(script.tokens):
            self._drop()
            return
        if script.done:
            self._event(_chunk(model, {}, finish="stop"))
            self._chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        call.completed = True
        # Linger until the client hangs up, so a client that reads to the end is seen closing.
        self._wait(call, 2.0)

    def _event(self, payload: dict[str, Any]) -> None:
        self._chunk(f"data: {json.dumps(payload)}\n\n")

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the TCP connection mid-body (no terminating chunk)."""
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- waiting while watching the client ------------------------------------------------

    def _wait(self, call: Call, seconds: float | None, gate: threading.Event | None = None) -> None:
        """Wait ``seconds`` (or until ``gate`` is set), noticing a client that hangs up."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.owner._stopping.is_set():
            if gate is not None and gate.is_set():
                return
            left = 0.05 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return
            # select returns as soon as the client's FIN arrives, whatever the step.
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if not data:
                    self._gone(call)
                    raise ClientGone

    def _gone(self, call: Call) -> None:
        if call.client_closed_at is None:
            call.client_closed_at = time.monotonic()
        call.closed.set()


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
