"""The voice's work runs on its own threads; picture threads run niced (issue 22)."""

import os
import threading

import pytest

from anima.pipeline import lower_priority, run_blocking, run_voice


async def test_voice_work_runs_on_its_own_threads():
    name = await run_voice(lambda: threading.current_thread().name)
    assert name.startswith("anima-voice")
    other = await run_blocking(lambda: threading.current_thread().name)
    assert not other.startswith("anima-voice")


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no per-thread nice here")
def test_lower_priority_nices_only_the_calling_thread():
    seen = {}

    def work():
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        lower_priority(before + 3)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, tid)
        seen["before"] = before

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen["after"] == min(19, seen["before"] + 3)
    me = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert me == seen["before"]  # the caller's thread kept its priority
