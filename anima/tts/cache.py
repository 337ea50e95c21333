"""Speech for lines known in advance, synthesised once and replayed at no cost.

A kiosk speaks most of its answers verbatim: the greeting, the operator's approved answers,
the apology. Synthesising them again on every turn puts the whole voice model on the path
between the user's question and the first sound (on a busy 2-core machine, hundreds of
milliseconds); :class:`CachedVoice` keeps each phrase's speech after its first synthesis, and
:meth:`CachedVoice.warm` speaks a list of known phrases ahead of time so that even the first
visitor hears them at once.

The cache is bounded in bytes (least recently used phrases go first) and keyed on the exact
phrase text and emotion, so nothing but a phrase the voice itself produced is ever replayed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from anima.frames import SpeechChunk
from anima.tts import Voice, speak


class CachedVoice:
    """A :class:`~anima.tts.Voice` that remembers the speech of the phrases it synthesised.

    ``max_bytes`` bounds the PCM kept (0 keeps nothing and passes every call through). Safe to
    share between sessions: the voice is called outside the lock, the cache is updated under it.
    """

    def __init__(self, voice: Voice, max_bytes: int = 64 * 2**20) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.voice = voice
        self.sample_rate: int = voice.sample_rate
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[str, str], tuple[SpeechChunk, ...]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        # Backend extras (the Piper synthesis config, the device) stay reachable.
        return getattr(self.voice, name)

    @property
    def size_bytes(self) -> int:
        """PCM bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def cached(self, text: str, emotion: str = "neutral") -> bool:
        """Whether ``text`` spoken with ``emotion`` would be replayed without synthesis."""
        with self._lock:
            return (text, emotion) in self._items

    def synthesize(
        self, text: str, turn: int = 0, emotion: str = "neutral"
    ) -> Iterator[SpeechChunk]:
        """Replay ``text`` if it was spoken before, else synthesise it (and keep it)."""
        key = (text, emotion)
        with self._lock:
            chunks = self._items.get(key)
            if chunks is not None:
                self._items.move_to_end(key)
                self.hits += 1
        if chunks is not None:
            for chunk in chunks:
                # A copy: whoever receives the speech may process it in place.
                yield replace(chunk, turn=turn, pcm=chunk.pcm.copy())
            return
        self.misses += 1
        made: list[SpeechChunk] = []
        for chunk in speak(self.voice, text, turn, emotion):
            made.append(replace(chunk, pcm=chunk.pcm.copy()))
            yield chunk
        # Only a phrase spoken to its end is kept: an interrupted one is incomplete.
        self._store(key, made)

    def warm(
        self,
        phrases: Iterable[tuple[str, str]],
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Synthesise each ``(text, emotion)`` not cached yet; returns how many were made.

        ``phrases`` come in order of priority. Stops early when ``stop`` is set or when the
        next phrase no longer fits: warming never evicts what it (or a session) put there.
        """
        todo = list(dict.fromkeys(p for p in phrases if p[0].strip() and not self.cached(*p)))
        made = 0
        for i, (text, emotion) in enumerate(todo):
            if stop is not None and stop.is_set():
                break
            chunks = list(speak(self.voice, text, 0, emotion))
            self.misses += 1
            if not self._store((text, emotion), chunks, evict=False):
                break  # full
            made += 1
            if progress is not None:
                progress(i + 1, len(todo))
        return made

    def clear(self) -> None:
        """Forget every phrase."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def _store(self, key: tuple[str, str], chunks: list[SpeechChunk], evict: bool = True) -> bool:
        """Keep ``chunks`` under ``key``; False when they do not fit (without ``evict``)."""
        size = sum(c.pcm.nbytes for c in chunks)
        if not chunks or size > self.max_bytes:
            return False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= sum(c.pcm.nbytes for c in old)
            if not evict and self._bytes + size > self.max_bytes:
                return False
            self._items[key] = tuple(chunks)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= sum(c.pcm.nbytes for c in dropped)
        return True
