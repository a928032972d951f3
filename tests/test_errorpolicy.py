"""The command line's error policy: the README's exit-status table is converter/errorpolicy.py's,
and each row happens, through the real command line in a subprocess (real pipes, /dev/full)."""

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

from converter.errorpolicy import BROKEN_PIPE, EXIT_STATUS, FAILED, OK, USAGE

README = Path(__file__).parent.parent / "README.md"
ENV = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}
CONVERT = [sys.executable, "-m", "converter"]


def run(*args, **kwargs):
    return subprocess.run([*CONVERT, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=60, **kwargs)


def test_the_readme_table_is_the_policy_table():
    text = README.read_text()
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", text, re.M)
    assert [(int(code), meaning.replace("\\|", "|")) for code, meaning in rows] == list(EXIT_STATUS)


@pytest.fixture
def pkl(tmp_path):
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps({f"k{i}": {"n": i, "pad": "x" * 50} for i in range(50_000)}))
    return src


def one_line(r, code, *words):
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_ok(pkl, tmp_path):
    assert run(pkl, tmp_path / "out.json", "-q").returncode == OK


@pytest.mark.parametrize("case", ["missing", "directory", "name too long", "no directory"])
def test_failed_rows_for_missing_and_unwritable_paths(tmp_path, pkl, case):
    if case == "missing":
        one_line(run(tmp_path / "nonexistent.pkl", tmp_path / "x.json"), FAILED, "nonexistent.pkl", "no such file")
        one_line(run("verify", tmp_path / "nonexistent.pkl", pkl), FAILED, "nonexistent.pkl", "no such file")
    elif case == "directory":
        one_line(run(tmp_path, tmp_path / "x.json"), FAILED, "is a directory")
    elif case == "name too long":
        one_line(run(pkl, tmp_path / ("x" * 300 + ".json")), FAILED, "file name too long")
    else:
        one_line(run(pkl, tmp_path / "nowhere" / "x.json"), FAILED, "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pkl"]


def test_failed_row_for_a_full_disk(pkl):
    with open("/dev/full", "w") as full:
        r = subprocess.run([*CONVERT, str(pkl), "-", "--to", "jsonl"], stdout=full, stderr=subprocess.PIPE,
                           text=True, env=ENV, timeout=60)
    one_line(r, FAILED, "no space left")


@pytest.mark.parametrize("flags, words", [
    (["--to", "nosuchformat"], ["Unknown format 'nosuchformat'"]),
    (["--to", "jsno"], ["did you mean 'json'"]),
    (["--json-style", "fancy"], ["--json-style 'fancy'", "tagged or plain"]),
    (["--layout", "rows"], ["--layout 'rows'"]),
    (["--py2-strings", "ascii"], ["--py2-strings 'ascii'"]),
    (["--pickle-protocol", "7"], ["--pickle-protocol 7", "0 to 5"]),
    (["--allow", "foo"], ["--allow 'foo'", "module.Name"]),
    (["--to", "shelve", "--dbm", "json"], ["--dbm json"]),
    (["--value-codec", "utf9"], ["Unknown codec 'utf9'", "did you mean 'utf8'"]),
    (["--budget", "depth=lots"], ["--budget"]),
])
def test_usage_rows_for_bad_option_values(pkl, tmp_path, flags, words):
    r = run(pkl, tmp_path / "x.dat", *flags)
    assert r.returncode == USAGE, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pkl"]


def test_the_library_checks_option_values_too():
    import converter
    from converter.errors import OptionError

    assert converter.Options(allow="geom.Point").allow == ("geom.Point",)  # one name, not ten letters
    with pytest.raises(OptionError, match="--pickle-protocol"):
        converter.Options(pickle_protocol=9)


def test_broken_pipe_row_is_quiet(pkl):
    """`convert ... - | head -1`: a real pipe whose reader leaves after one line."""
    proc = subprocess.Popen([*CONVERT, str(pkl), "-", "--to", "jsonl"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    head = subprocess.run(["head", "-1"], stdin=proc.stdout, capture_output=True, timeout=60)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == BROKEN_PIPE, err
    assert head.stdout.startswith(b'{"key": "k0"')
    assert err == "", err
