"""A brain on any OpenAI-compatible chat-completions server, streamed over SSE.

Works with vLLM, Ollama, llama.cpp's server and hosted APIs: ``POST {base_url}/chat/completions``
with ``"stream": true``; each ``data: {...}`` event carries a text delta, ``data: [DONE]`` ends.

Failures and timing:

- ``connect_timeout`` bounds opening the connection, ``read_timeout`` any silence in the
  middle of a reply, ``first_token_timeout`` the time from request to the first text.
- Before the first text, connection errors, timeouts, HTTP 429 and 5xx are retried
  ``retries`` times with exponential backoff. Once text was yielded nothing is retried (the
  avatar has already spoken it); the failure is raised.
- Every failure is a :class:`~anima.dialogue.brain.BrainError` with a one-line message (the
  HTTP status and the server's own error message when it sent JSON).
- SSE comments, ``event:`` lines and undecodable ``data:`` lines are skipped; a stream that
  ends without ``[DONE]`` or a finish reason is an error (the server went away mid-reply).
- Cancelling the consumer (``aclose()`` on the stream, or cancelling its task) closes the
  HTTP response at once, so the server stops generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from anima.dialogue.brain import BrainError, Message
from anima.dialogue.metrics import ReplyTimer

log = logging.getLogger(__name__)


class OpenAIBrain:
    """Streams replies from an OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 160,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        first_token_timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.25,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"brain base_url must start with http:// or https://: {base_url!r}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.first_token_timeout = first_token_timeout
        self.read_timeout = read_timeout
        self.retries = retries
        self.backoff = backoff
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, write=read_timeout),
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Any) -> OpenAIBrain:
        """Build from :class:`~anima.config.BrainSettings`; the key falls back to the env."""
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(
            settings.base_url,
            settings.model,
            api_key=key or os.environ.get("OPENAI_API_KEY") or None,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            first_token_timeout=settings.first_token_timeout,
            retries=settings.retries,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield the reply as text deltas; raise :class:`BrainError` on failure."""
        payload: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "temperature": self.temperature,
            "max_tokens": max_tokens or self.max_tokens,
        }
        if self.model:
            payload["model"] = self.model
        attempt = 0
        timer = ReplyTimer(self.name)  # from the first attempt: what the user waits for
        while True:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    first, events = await self._open(stack, payload)
                except BrainError as exc:
                    if not exc.retryable or attempt >= self.retries:
                        if attempt:
                            raise BrainError(
                                f"{exc} (after {attempt + 1} attempts)", retryable=exc.retryable
                            ) from exc
                        raise
                    delay = self.backoff * (2**attempt)
                    attempt += 1
                    log.info("brain request failed (%s); retry %d in %.2fs", exc, attempt, delay)
                    await asyncio.sleep(delay)
                    continue
                if first is None:
                    return  # the server finished with an empty reply
                # From here on text has been yielded: no retry, whatever happens.
                timer.token()
                yield first
                try:
                    async for delta in events:
                        timer.token()
                        yield delta
                except httpx.TimeoutException as exc:
                    raise BrainError(
                        f"brain stream stalled: no data for {self.read_timeout:g}s"
                    ) from exc
                except httpx.HTTPError as exc:
                    raise BrainError(f"brain stream broke off: {_one_line(exc)}") from exc
                timer.finish()
                return

    async def _open(
        self, stack: contextlib.AsyncExitStack, payload: dict[str, Any]
    ) -> tuple[str | None, AsyncIterator[str]]:
        """Send the request and read up to the first text delta, within the first-token timeout.

        The response and its event iterator are registered on ``stack`` so they are closed
        whenever the caller's stream ends, fails or is cancelled.
        """
        try:
            async with asyncio.timeout(self.first_token_timeout):
                response = await stack.enter_async_context(
                    self._client.stream("POST", self.url, json=payload)
                )
                if response.status_code != 200:
                    raise await _status_error(response)
                events = _deltas(response)
                stack.push_async_callback(events.aclose)
                first = await anext(events, None)
        except TimeoutError as exc:
            raise BrainError(
                f"no reply from {self.url} within {self.first_token_timeout:g}s", retryable=True
            ) from exc
        except httpx.TimeoutException as exc:
            raise BrainError(f"{self.url} timed out: {_one_line(exc)}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise BrainError(
                f"cannot reach {self.url}: {_one_line(exc) or type(exc).__name__}", retryable=True
            ) from exc
        return first, events


async def _deltas(response: httpx.Response) -> AsyncIterator[str]:
    """Text deltas of an SSE chat-completions stream (see the module docstring)."""
    finished = False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, ": keep-alive" comments, event:/id:/retry: fields
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            log.debug("skipping undecodable SSE line: %.80s", data)
            continue
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk:
            raise BrainError(f"brain server error: {_error_text(chunk)}")
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                yield content
            if choice.get("finish_reason"):
                finished = True
    if not finished:
        # Retryable only matters before the first text: after it, nothing is retried.
        raise BrainError("brain stream ended before the reply was complete", retryable=True)


async def _status_error(response: httpx.Response) -> BrainError:
    """A one-line error for a non-200 answer; 429 and 5xx may be retried."""
    try:
        body = (await response.aread())[:4096]
    except httpx.HTTPError:
        body = b""
    detail = ""
    try:
        detail = _error_text(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError):
        detail = body.decode("utf-8", "replace")
    detail = _one_line(detail)[:200]
    status = response.status_code
    message = f"brain server answered HTTP {status}" + (f": {detail}" if detail else "")
    return BrainError(message, retryable=status == 429 or status >= 500)


def _error_text(body: Any) -> str:
    """The message inside the usual error shapes: {"error": {"message"}}, {"error"}, {"detail"}."""
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err.get("type") or json.dumps(err)
        if err is not None:
            return str(err)
    return json.dumps(body)[:200]


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
