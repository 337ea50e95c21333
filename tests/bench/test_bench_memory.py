"""Memory bench: the growth maths, and a short run of the real thing."""

import json

import pytest

from anima.bench.memory import bench_memory, growth


def test_growth_ignores_the_warm_up_and_fits_a_slope():
    samples = [(0.0, 100.0), (6.0, 500.0)] + [(60.0 * k, 600.0 + 2.0 * k) for k in range(1, 11)]
    g = growth(samples)
    assert g["start_mb"] == 602.0 and g["end_mb"] == 620.0
    assert g["growth_mb"] == pytest.approx(18.0)
    assert g["slope_mb_per_min"] == pytest.approx(2.0)


def test_growth_needs_samples():
    with pytest.raises(ValueError):
        growth([(0.0, 1.0)])


@pytest.mark.slow
def test_bench_memory_short_run(tmp_path, settings):
    from rich.console import Console

    assert bench_memory(tmp_path, settings, Console(), seconds=1.0, soak=4.0, counts=(1,)) == 0
    r = json.loads((tmp_path / "memory.json").read_text())
    one = r["sessions"]["1"]
    # ru_maxrss is the kernel's high-water mark; it can trail a fresh statm sample slightly.
    assert one["peak_rss_mb"] >= one["running_peak_mb"] - 5
    assert one["running_peak_mb"] >= one["rss_loaded_mb"] > 100
    assert one["frames"] > 0
    soak = r["soak"]
    assert soak["turns"] >= 1 and len(soak["samples"]) >= 3
