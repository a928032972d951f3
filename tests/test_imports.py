"""Start-up stays small: the CLI imports what the requested formats need, not every reader.

Each check runs a fresh interpreter (the modules an earlier test imported would hide a
regression) and lists the modules it ended with.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "people.pkl"

# The heavy halves of the built-in plugins and the libraries only some formats need.
READERS = {"converter.plugins.gdbm_file", "converter.plugins.bdb_file", "converter.plugins.bdb_dump",
           "converter.safepickle",
           "converter.jsontags", "converter.jsonstream", "sqlite3", "importlib.metadata", "rich"}

PROBE = r"""
import json, sys
argv = sys.argv[1:]
if argv == ["import"]:
    import converter
else:
    from converter.cli import main
    sys.argv = ["convert", *argv]
    try:
        main()
    except SystemExit:
        pass
print("\n" + json.dumps(sorted(sys.modules)), file=sys.__stderr__)
"""


def modules_after(*argv, tmp_path):
    env = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}
    env.pop("CONVERTER_LOAD_PLUGINS")  # the default: look for installed plugins, as users run it
    r = subprocess.run([sys.executable, "-c", PROBE, *map(str, argv)], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=60)
    return set(json.loads(r.stderr.strip().splitlines()[-1])), r


def test_import_converter_loads_no_reader(tmp_path):
    loaded, _ = modules_after("import", tmp_path=tmp_path)
    assert not loaded & READERS, loaded & READERS
    assert not any(m.startswith("converter.plugins.") for m in loaded)


def test_help_loads_no_reader(tmp_path):
    loaded, r = modules_after("--help", tmp_path=tmp_path)
    assert "Usage" in r.stdout
    assert not loaded & READERS, loaded & READERS


def test_pickle_to_json_loads_only_the_pickle_and_json_halves(tmp_path):
    loaded, r = modules_after(EXAMPLE, tmp_path / "out.json", "-q", tmp_path=tmp_path)
    assert (tmp_path / "out.json").exists(), r.stderr
    assert {"converter.safepickle", "converter.jsontags"} <= loaded
    unused = READERS - {"converter.safepickle", "converter.jsontags"}
    assert not loaded & unused, loaded & unused


@pytest.mark.parametrize("fixture, module", [("gdbm/numsync.db", "converter.plugins.gdbm_file"),
                                             ("bdb/hash.db", "converter.plugins.bdb_file"),
                                             ("bdb/dump_print.txt", "converter.plugins.bdb_dump")])
def test_the_reader_of_a_used_format_is_loaded_when_it_is_read(tmp_path, fixture, module):
    """The lazy references resolve: the conversion works and its reader was imported for it."""
    src = Path(__file__).parent / "fixtures" / fixture
    loaded, r = modules_after(src, tmp_path / "out.jsonl", "-q", "--value-codec", "raw", "--key-codec", "raw",
                              tmp_path=tmp_path)
    assert (tmp_path / "out.jsonl").stat().st_size > 0, r.stderr
    assert module in loaded
