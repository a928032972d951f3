"""The README keeps up with the code: every format in the table, every hook and Format field documented."""

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from converter import hookspecs
from converter.registry import Format, get_registry

README = (Path(__file__).parent.parent / "README.md").read_text()


def table_formats():
    return set(re.findall(r"^\| `([^`]+)` \| (?:yes|-)", README, flags=re.M))


def test_every_registered_format_is_in_the_readme_table():
    assert table_formats() == {f.name for f in get_registry()}


@pytest.mark.parametrize("fmt", list(get_registry()), ids=lambda f: f.name)
def test_readme_row_says_what_the_format_does(fmt):
    row = next(l for l in README.splitlines() if l.startswith(f"| `{fmt.name}` |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert (cells[1] == "yes") == (fmt.reader is not None)
    assert (cells[2] != "-") == (fmt.writer is not None)
    for alias in fmt.aliases:
        assert f"`{alias}`" in cells[4], f"alias {alias} of {fmt.name} missing from the README"
    for ext in fmt.extensions:
        assert f"{ext}" in README


def test_every_hook_is_documented_with_its_signature():
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("register_"):
            sig = f"{name}({', '.join(inspect.signature(fn).parameters)})"
            assert f"`{sig}`" in README, sig
            assert fn.__doc__ and "register(" in fn.__doc__


def test_every_format_field_is_documented():
    fields = [f.name for f in dataclasses.fields(Format) if f.name not in ("plugin", "distribution")]
    plugin_section = README.split("## Plugins", 1)[1]
    for field in fields:
        assert f"`{field}" in plugin_section, field


def test_readme_quick_start_commands_exist():
    assert ".venv/bin/convert examples/people.pkl people.json" in README
    assert Path(__file__).parent.parent.joinpath("examples", "people.pkl").exists()
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest -q" in ci
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest -q" in README


BENCHMARK_FLAGS = {"--reps", "--quick", "--only", "--from-log", "--size"}  # benchmarks/run.py's, not convert's


def _help_flags() -> dict[str, set]:
    import subprocess
    import sys

    from converter.cli import SUBCOMMANDS

    flags = {}
    for command in ("", *SUBCOMMANDS):
        text = subprocess.run([sys.executable, "-m", "converter", *command.split(), "--help"],
                              capture_output=True, text=True, timeout=60).stdout
        flags[command] = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    return flags


def test_the_readme_and_the_help_agree_on_every_flag():
    help_flags = _help_flags()
    known = set().union(*help_flags.values())
    in_readme = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", README)) - BENCHMARK_FLAGS
    assert in_readme - known == set(), "flags the README names that no command has"
    assert help_flags["convert"] - in_readme == set(), "convert's flags the README does not mention"
