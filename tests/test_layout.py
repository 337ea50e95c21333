"""The house rules of the layout: arrows point down, and the CLI is a package nothing imports.

Imports are read from the source (every ``import`` anywhere in a module: top level, inside
functions and under ``TYPE_CHECKING``), so a lazy import that points the wrong way fails too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import anima

ROOT = Path(anima.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The anima modules ``name`` imports, anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from anima import watermark`` imports the module anima.watermark
            found.update(f"{module}.{a.name}" for a in node.names)
    return {m for m in found if m in MODULES and m != name}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_every_cli_module_imports():
    names = [m for m in MODULES if _within(m, "anima.cli") and m != "anima.cli.__main__"]
    assert {"anima.cli", "anima.cli.say", "anima.cli.drive", "anima.cli.live"} <= set(names)
    for name in names:
        importlib.import_module(name)


def test_command_modules_have_a_parser_and_a_runner():
    from anima.cli import COMMANDS, _parser

    _parser()  # every sub-command registers without loading anything heavy
    for name in COMMANDS:
        module = importlib.import_module(f"anima.cli.{name}")
        assert callable(module.add_parser) and callable(module.run), name


def test_nothing_outside_the_cli_imports_it():
    offenders = {
        name: sorted(m for m in _imports(name) if _within(m, "anima.cli"))
        for name in MODULES
        if not _within(name, "anima.cli")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "anima.engine",
            ("anima.live", "anima.server", "anima.cli", "anima.protocol", "anima.cluster"),
        ),
        ("anima.air", ("anima.engine", "anima.live", "anima.server", "anima.cli")),
        ("anima.live", ("anima.server", "anima.cli", "anima.protocol")),
        ("anima.server", ("anima.cluster", "anima.cli")),
        ("anima.protocol", ("anima.cluster", "anima.cli")),
    ],
)
def test_arrows_point_down(package, forbidden):
    wrong = {
        name: sorted(m for m in _imports(name) if any(_within(m, f) for f in forbidden))
        for name in MODULES
        if _within(name, package)
    }
    assert {k: v for k, v in wrong.items() if v} == {}


STAGES = ("anima.asr", "anima.dialogue", "anima.tts", "anima.lipsync", "anima.render")
ABOVE_STAGES = ("anima.air", "anima.engine", "anima.live", "anima.server", "anima.protocol")
ABOVE_STAGES += ("anima.cli", "anima.bench", "anima.render_job")


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_no_other_stage_and_nothing_above(stage):
    forbidden = ABOVE_STAGES + tuple(s for s in STAGES if s != stage)
    wrong = {
        name: sorted(m for m in _imports(name) if any(_within(m, f) for f in forbidden))
        for name in MODULES
        if _within(name, stage)
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_cli_modules_import_no_cycle():
    """Command modules may use anima.cli.common, never the dispatch or each other."""
    for name in MODULES:
        if not _within(name, "anima.cli") or name in ("anima.cli", "anima.cli.__main__"):
            continue
        siblings = {m for m in _imports(name) if _within(m, "anima.cli")}
        assert siblings <= {"anima.cli.common"}, (name, siblings)
