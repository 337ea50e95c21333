"""The tail helpers of ``anima bench e2e``/``rtc`` (issue 22): a CPU hog, load, summary, plot."""

import os

from anima.bench.tail import cpu_hog, load1, plot_vs_load, tail_summary


def _cpu_ticks(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_cpu_hog_spins_while_open_and_is_gone_after(tmp_path):
    import time

    with cpu_hog(True, core=min(os.sched_getaffinity(0))) as pid:
        assert pid is not None and os.path.exists(f"/proc/{pid}")
        time.sleep(0.5)
        assert _cpu_ticks(pid) > 0  # it really burns CPU
    assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read()
    with cpu_hog(False) as none:
        assert none is None


def test_summary_and_plot(tmp_path):
    assert isinstance(load1(), float)
    s = tail_summary([0.5, 0.7, 2.0], [1.0, 2.0, 3.0])
    assert s["latency_ms"]["p50"] == 700 and s["latency_ms"]["max"] == 2000
    assert s["load1"]["n"] == 3
    assert tail_summary([], []) == {"n": 0}
    plot_vs_load({"heard": [(1.0, 0.5), (2.0, 0.7)]}, tmp_path / "p.png", "t")
    assert (tmp_path / "p.png").stat().st_size > 1000
