"""Known lines are synthesised after loading and replayed when spoken."""

from __future__ import annotations

import asyncio

from engine_helpers import collect, make_engine

from anima.events import StateChanged, TurnLatency
from anima.tts.cache import CachedVoice


def _is(kind):
    return lambda item, _: isinstance(item, kind)


async def test_known_lines_are_warm_and_replayed(tmp_path):
    engine = make_engine(tmp_path, voice={"prewarm": True})
    try:
        await engine.load()
        voice = engine.voice
        assert isinstance(voice, CachedVoice)
        made = await engine.phrases_ready()
        agent = engine.new_agent("t")
        known = agent.known_phrases()
        # The greeting, fixed lines, and the first phrases of every knowledge answer.
        assert made == len(known) > 20
        assert all(voice.cached(p.text, p.emotion) for p in known)
        park = [p for p in known if p.text.startswith("There is no car park")]
        assert park and voice.cached(park[0].text, park[0].emotion)
        misses = voice.misses
        s = engine.session(media="events", realtime=False, greet=False)
        await s.start()
        await s.ask("Where can I park my car?")
        await collect(s, _is(TurnLatency), timeout=60)
        # ...and the whole answer, to its end.
        await collect(s, lambda i, _: isinstance(i, StateChanged) and i.state == "listening")
        await s.aclose()
        # Both phrases of the answer were warm: nothing was synthesised for this turn.
        assert voice.hits >= 2 and voice.misses == misses
    finally:
        await engine.aclose()


async def test_prewarm_off_and_cache_off(tmp_path):
    engine = make_engine(tmp_path, voice={"prewarm": False})
    await engine.load()
    assert await engine.phrases_ready() == 0
    assert isinstance(engine.voice, CachedVoice) and len(engine.voice) == 0
    await engine.aclose()
    bare = make_engine(tmp_path, voice={"cache_mb": 0})
    assert not isinstance(bare.voice, CachedVoice)


async def test_closing_stops_warming_early(tmp_path):
    engine = make_engine(tmp_path, voice={"prewarm": True})
    await engine.load()
    await engine.aclose()  # right away: warming stops after the phrase in hand
    made = await asyncio.wait_for(engine.phrases_ready(), 30)
    assert made < len(engine.new_agent("t").known_phrases())
