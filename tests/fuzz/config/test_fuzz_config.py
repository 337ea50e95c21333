"""Config TOML under hostile input: ``Settings.load`` returns settings or raises ValueError
(a one-line reason the CLI prints as "bad settings: …"), never another exception."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz_helpers import fuzz, regression_files  # noqa: E402

from anima.config import Settings  # noqa: E402

SECTIONS = sorted(Settings.model_fields)
KEYS = sorted(
    {
        k
        for name, f in Settings.model_fields.items()
        for k in getattr(f.annotation, "model_fields", {})
    }
    | {"bogus", "size", "fps", "host", "port"}
)

toml_scalars = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True).map(lambda f: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(f), repr(f))),
    st.booleans().map(lambda b: str(b).lower()),
    st.text(max_size=20).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(["[]", "[1, 2]", '["a"]', "{}", "{ a = 1 }", "1979-05-27T07:32:00Z", "0x10"]),
)  # fmt: skip


def _toml(sections: list[tuple[str, list[tuple[str, str]]]], top: list[tuple[str, str]]) -> str:
    lines = [f"{k} = {v}" for k, v in top]
    for name, items in sections:
        lines.append(f"[{name}]")
        lines += [f"{k} = {v}" for k, v in items]
    return "\n".join(lines)


tomls = st.builds(
    _toml,
    st.lists(
        st.tuples(
            st.sampled_from(SECTIONS) | st.sampled_from(["x", "render.deep"]),
            st.lists(st.tuples(st.sampled_from(KEYS), toml_scalars), max_size=5),
        ),
        max_size=4,
    ),
    st.lists(st.tuples(st.sampled_from([*SECTIONS, "log_level"]), toml_scalars), max_size=3),
).map(lambda s: s.encode("utf-8", "surrogatepass")) | st.binary(max_size=120)


def check_config(data: bytes) -> None:
    """Any bytes as a config file: Settings, or ValueError with a one-line-first message."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "anima.toml"
        path.write_bytes(data)
        try:
            settings = Settings.load(path)
        except ValueError as exc:
            assert str(exc)
            return
    assert isinstance(settings, Settings)


test_config, test_config_slow = fuzz(
    check_config, tomls, examples=200, cases=[(b,) for b in regression_files("config")]
)
