"""``anima bench report``: one Markdown page and PNG plots from every JSON under ``bench/results``.

Known benchmarks get their own section (``e2e*``: the latency breakdown against both
baselines; ``quality``; ``wav2lip``; ``memory``); every other result contributes its sample
statistics (any object with ``p50``/``p95``) to a generic table, so a new benchmark shows up
without changes here. Output: ``<out>/report.md``, ``<out>/report_e2e*.png`` and
``<out>/report_memory.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

E2E_PARTS = ("endpoint", "asr", "first_phrase", "tts_first_chunk", "first_frame", "transport")
BASE_PARTS = {
    "cascade": ("endpoint", "asr", "reply", "tts", "render", "transport"),
    "fixed500_sentence": ("endpoint", "asr", "first_sentence", "tts", "render", "transport"),
}


def load_results(folder: Path) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` in ``folder`` by file stem (unreadable files are skipped with a note)."""
    results: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            results[path.stem] = {"_error": f"unreadable: {exc}"}
            continue
        if isinstance(data, dict):
            results[path.stem] = data
    return results


def stat_rows(data: Any, prefix: str = "") -> list[tuple[str, dict[str, float]]]:
    """(dotted key, stats) for every nested object that has ``p50`` and ``p95``."""
    rows: list[tuple[str, dict[str, float]]] = []
    if isinstance(data, dict):
        if "p50" in data and "p95" in data:
            return [(prefix, data)]
        for k, v in data.items():
            if k in ("machine", "versions", "turns", "samples"):
                continue
            rows += stat_rows(v, f"{prefix}.{k}" if prefix else str(k))
    return rows


def _ms(d: dict[str, Any] | None, key: str = "p50") -> str:
    return f"{d[key] * 1000:.0f}" if d and key in d else "–"


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "–" if v is None else format(v, fmt)


def e2e_section(name: str, r: dict[str, Any]) -> list[str]:
    """The latency breakdown of one e2e result as Markdown lines."""
    cfg = r.get("config", {})
    ours = r.get("ours", {})
    base = r.get("baselines", {})
    lines = [
        f"### {name}: voice-to-face latency ({cfg.get('turns')} turns, brain "
        f"`{cfg.get('backend')}`, {cfg.get('transport', '')})",
        "",
        "| part (ms) | ours p50 | ours p95 | cascade p50 | 500 ms VAD + sentence p50 |",
        "|---|---:|---:|---:|---:|",
    ]
    alias = {
        "first_phrase": ("reply", "first_sentence"),
        "tts_first_chunk": ("tts", "tts"),
        "first_frame": ("render", "render"),
    }
    for part in ("endpoint", "asr", "first_token", *E2E_PARTS[2:], "client_audio", "client_video"):
        a_key, b_key = alias.get(part, (part, part))
        if part == "client_audio":
            a_key = b_key = "total"
        if part in ("first_token", "client_video"):
            a_key = b_key = ""
        a = base.get("cascade", {}).get("summary", {}).get(a_key) if a_key else None
        b = base.get("fixed500_sentence", {}).get("summary", {}).get(b_key) if b_key else None
        label = "**first audio at client**" if part == "client_audio" else part
        lines.append(
            f"| {label} | {_ms(ours.get(part))} | {_ms(ours.get(part), 'p95')} | {_ms(a)} | "
            f"{_ms(b)} |"
        )
    ratios = r.get("ratios", {})
    if ratios:
        lines += [
            "",
            "Ours / baseline (first audio at the client): cascade "
            f"{_num(ratios.get('cascade_p50'))} (p50), {_num(ratios.get('cascade_p95'))} (p95); "
            f"500 ms VAD + sentence {_num(ratios.get('fixed500_sentence_p50'))} (p50), "
            f"{_num(ratios.get('fixed500_sentence_p95'))} (p95).",
        ]
    la = r.get("load_average_start"), r.get("load_average_end")
    if all(la):
        start, end = ("/".join(f"{x:.1f}" for x in v) for v in la)
        lines.append(f"Load average (1/5/15 min) at start {start}, at end {end}.")
    return [*lines, ""]


def other_sections(results: dict[str, dict[str, Any]]) -> list[str]:
    """Quality, Wav2Lip-class cost and memory sections (those that are present)."""
    lines: list[str] = []
    q = results.get("quality")
    if q and "offset_ms" in q:
        lines += [
            "### Lip-sync quality (from the output video)",
            "",
            f"A/V offset **{q['offset_ms']:+.0f} ms** (+ = mouth after sound), correlation of "
            f"re-detected mouth opening with the speech envelope **{q['correlation']:.2f}** "
            f"(at lag 0: {q['correlation_lag0']:.2f}); faces found on {q['faces_found']}/"
            f"{q['frames']} frames.",
            "",
        ]
    w = results.get("wav2lip")
    if w and "generator" in w:
        lines += [
            "### Renderer vs Wav2Lip-class generator (one CPU thread, per frame)",
            "",
            "| generator | its ms / frame p50 | ours ms / frame p50 (interleaved) | ratio |",
            "|---|---:|---:|---:|",
        ]
        size = w["config"]["render_size"]
        for px, g in w["generator"].items():
            ours = w["ours_ms"].get(px, w["ours_ms"])
            lines.append(
                f"| Wav2Lip-class {px} px ({g['params'] / 1e6:.1f} M params) | "
                f"{g['ms']['p50']:.1f} | {ours.get('p50', float('nan')):.1f} ({size} px) | "
                f"{w['ratios'][px]:.0f}× |"
            )
        lines.append("")
    m = results.get("memory")
    if m and "sessions" in m:
        lines += [
            "### Memory (RSS, MB)",
            "",
            "| sessions | models loaded | peak while talking | process peak |",
            "|---:|---:|---:|---:|",
        ]
        for n, run in m["sessions"].items():
            if "error" in run:
                lines.append(f"| {n} | {run['error']} | | |")
                continue
            lines.append(
                f"| {n} | {run['rss_loaded_mb']:.0f} | {run.get('running_peak_mb', 0):.0f} | "
                f"{run['peak_rss_mb']:.0f} |"
            )
        soak = m.get("soak")
        if soak:
            lines += [
                "",
                f"Soak {soak['seconds']:.0f} s ({soak['turns']} turns): RSS {soak['start_mb']:.0f}"
                f" → {soak['end_mb']:.0f} MB ({soak['growth_mb']:+.1f} MB, "
                f"{soak['slope_mb_per_min']:+.2f} MB/min); second half "
                f"{soak.get('second_half_growth_mb', float('nan')):+.1f} MB "
                f"({soak.get('second_half_slope_mb_per_min', float('nan')):+.2f} MB/min).",
            ]
        lines.append("")
    return lines


def render_markdown(results: dict[str, dict[str, Any]]) -> str:
    """The whole report page."""
    lines = ["# anima benchmark report", ""]
    machine = next((r["machine"] for r in results.values() if "machine" in r), None)
    if machine:
        lines += [
            f"Machine: {machine.get('cpu')}, {machine.get('cpus')} CPUs, "
            f"{machine.get('platform')}, Python {machine.get('python')}.",
            "",
        ]
    for name, r in results.items():
        if name.startswith("e2e") and "ours" in r:
            lines += e2e_section(name, r)
    lines += other_sections(results)
    lines += [
        "### Every sample statistic",
        "",
        "| result | metric | n | p50 | p95 | max |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if "_error" in r:
            lines.append(f"| {name} | {r['_error']} | | | | |")
            continue
        for key, s in stat_rows(r):
            lines.append(
                f"| {name} | {key} | {s.get('n', '')} | {s['p50']:.4g} | {s['p95']:.4g} | "
                f"{s.get('max', float('nan')):.4g} |"
            )
    return "\n".join(lines) + "\n"


def plot_e2e(r: dict[str, Any], path: Path) -> None:
    """Stacked bars of the p50 parts: ours and both baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("ours", E2E_PARTS, r.get("ours", {}))]
    for name, parts in BASE_PARTS.items():
        if name in r.get("baselines", {}):
            rows.append((name, parts, r["baselines"][name]["summary"]))
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.8 * len(rows)))
    colours = plt.get_cmap("tab10")
    labelled: set[str] = set()
    for y, (_name, parts, summ) in enumerate(rows):
        left = 0.0
        for i, part in enumerate(parts):
            v = summ.get(part, {}).get("p50", 0.0) * 1000
            label = part if part not in labelled else None
            labelled.add(part)
            ax.barh(y, v, left=left, color=colours(i), label=label)
            left += v
        ax.text(left + 10, y, f"{left:.0f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [n for n, _, _ in rows])
    ax.set_xlabel("ms (p50 of each part)")
    ax.set_title("end of user speech → first avatar audio at the client")
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_memory(m: dict[str, Any], path: Path) -> None:
    """RSS per session count, and the soak curve when present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    soak = m.get("soak")
    fig, axes = plt.subplots(1, 2 if soak else 1, figsize=(10 if soak else 5, 3.2))
    ax = axes[0] if soak else axes
    ns = [n for n, run in m["sessions"].items() if "error" not in run]
    ax.bar(ns, [m["sessions"][n].get("running_peak_mb", 0) for n in ns])
    ax.set_xlabel("sessions")
    ax.set_ylabel("RSS peak while talking (MB)")
    if soak:
        t = [s[0] / 60 for s in soak["samples"]]
        axes[1].plot(t, [s[1] for s in soak["samples"]])
        axes[1].set_xlabel("minutes")
        axes[1].set_ylabel("RSS (MB)")
        axes[1].set_title(f"soak: {soak['slope_mb_per_min']:+.2f} MB/min")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def bench_report(out: Path, err: Console) -> int:
    """Write ``report.md`` and the plots into ``out`` (the results folder)."""
    if not out.is_dir():
        raise ValueError(f"no results folder {out}; run a benchmark first")
    results = load_results(out)
    if not results:
        raise ValueError(f"no JSON results in {out}; run a benchmark first")
    for name, r in results.items():
        if name.startswith("e2e") and "ours" in r:
            plot_e2e(r, out / f"report_{name}.png")
    if "sessions" in results.get("memory", {}):
        plot_memory(results["memory"], out / "report_memory.png")
    path = out / "report.md"
    path.write_text(render_markdown(results), encoding="utf-8")
    err.print(f"wrote {path} ({len(results)} results)")
    return 0
