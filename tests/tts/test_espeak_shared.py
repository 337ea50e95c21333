"""espeak-ng keeps its callback in a global: instances share one library, callback and lock."""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor

from anima.tts.espeak import Espeak


def test_a_dropped_instance_leaves_the_others_working():
    # Each instance used to install its own callback; once a short-lived one was collected the
    # library called freed memory on the next synthesis (a segfault when an engine loaded).
    kept = Espeak()
    Espeak().speak("temporary", "en-us")
    gc.collect()
    assert len(kept.speak("good morning", "en-us").pcm) > 1000


def test_instances_on_several_threads_take_turns():
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda _: Espeak().speak("ni3 hao3", "cmn-latn-pinyin"), range(8)))
    assert all(len(u.pcm) > 1000 and u.timings for u in done)
