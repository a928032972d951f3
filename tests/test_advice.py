"""Every refusal's advice works when followed: each case runs the real command line, takes the
flag the error message suggests (from the message itself, not from this file), runs again with
it, and checks the conversion then succeeds, with the right records and without --trust."""

import dbm.dumb
import fractions
import json
import os
import pickle
import re
import sqlite3
import subprocess
import sys

import pytest

ENV = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}


def convert(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=120, input=stdin)


def refused(args, pattern, stdin=None):
    """Run ``args``, check it is refused in one line, and return what ``pattern`` finds in the message."""
    r = convert(*args, stdin=stdin)
    assert r.returncode in (1, 2), r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("convert: error:") and "Traceback" not in r.stderr, r.stderr
    found = re.search(pattern, line)
    assert found, line
    return found.group(1)


def follows(args, stdin=None):
    r = convert(*args, stdin=stdin)
    assert r.returncode == 0, r.stderr
    assert "--trust" not in " ".join(map(str, args))
    return r


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def test_a_python2_string_that_is_not_utf8(tmp_path):
    src = tmp_path / "py2.pkl"
    src.write_bytes(b"(dp0\nS'k'\np1\nS'caf\\xe9'\np2\ns.")  # protocol 0, as Python 2 wrote it
    flag = refused([src, tmp_path / "out.json"], r"use (--py2-strings \w+)")
    follows([src, tmp_path / "out.json", *flag.split()])
    assert json.loads((tmp_path / "out.json").read_text()) == {"k": "café"}


def test_a_refused_global(tmp_path):
    src = tmp_path / "frac.pkl"
    src.write_bytes(pickle.dumps({"f": fractions.Fraction(1, 3)}))
    flag = refused([src, tmp_path / "out.pkl"], r"(--allow [\w.]+) to permit it")
    follows([src, tmp_path / "out.pkl", *flag.split()])
    assert load(tmp_path / "out.pkl") == {"f": fractions.Fraction(1, 3)}


def test_a_sqlite_file_of_several_tables(tmp_path):
    src = tmp_path / "two.sqlite"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE a (x)")
    con.execute("CREATE TABLE b (y)")
    con.execute("INSERT INTO a VALUES (1)")
    con.commit()
    con.close()
    flag = refused([src, tmp_path / "out.json"], r"pick one with (--table)")
    follows([src, tmp_path / "out.json", flag, "a"])
    assert json.loads((tmp_path / "out.json").read_text()) == {"$dict": [[1, {"x": 1}]]}  # the rowid, an int key


def test_a_resource_budget(tmp_path):
    src = tmp_path / "big.pkl"
    src.write_bytes(pickle.dumps({"n": 10**5000}))
    env_limit = {**ENV, "CONVERTER_BUDGET": "digits=1000"}
    r = subprocess.run([sys.executable, "-m", "converter", src, tmp_path / "out.json"], capture_output=True,
                       text=True, env=env_limit, timeout=120)
    assert r.returncode == 1
    flag = re.search(r"raise it with (--budget) digits=N", r.stderr).group(1)
    r = subprocess.run([sys.executable, "-m", "converter", src, tmp_path / "out.json", *flag.split(), "digits=6000"],
                       capture_output=True, text=True, env=env_limit, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1" + "0" * 5000 in (tmp_path / "out.json").read_text()


def test_a_record_that_cannot_be_a_table_row(tmp_path):
    src = tmp_path / "lay.pkl"
    src.write_bytes(pickle.dumps({"a": {"x": 1}, "b": [1]}))
    flag = refused([src, tmp_path / "out.sqlite", "--layout", "table"], r"use (--layout kv)")
    follows([src, tmp_path / "out.sqlite", *flag.split(), "--verify"])


def test_a_primary_key_field_that_repeats(tmp_path):
    src = tmp_path / "dup.json"
    src.write_text('[{"id": 1, "n": "a"}, {"id": 1, "n": "b"}]')
    refused([src, tmp_path / "out.sqlite", "--pk", "id"], r"(leave out --pk)")
    follows([src, tmp_path / "out.sqlite", "--verify"])


def test_repeated_keys_from_a_stream(tmp_path):
    lines = '{"key": "a", "value": 1}\n{"key": "a", "value": 2}\n'
    ext = refused(["-", tmp_path / "out.json", "--from", "jsonl"], r"write JSON Lines \((\.jsonl)\)", stdin=lines)
    follows(["-", tmp_path / f"out{ext}", "--from", "jsonl"], stdin=lines)
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 2  # both records


def test_an_output_that_exists(tmp_path):
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "out.json").write_text("old")
    flag = refused([src, tmp_path / "out.json"], r"use (--force) to replace it")
    follows([src, tmp_path / "out.json", flag])
    assert json.loads((tmp_path / "out.json").read_text()) == {"a": 1}


def test_a_forced_codec_that_does_not_fit(tmp_path):
    db = dbm.dumb.open(str(tmp_path / "bin"), "n")
    db[b"a"], db[b"b"] = b"text", bytes([255, 0, 1])
    db.close()
    src = tmp_path / "bin.dat"
    flag = refused([src, tmp_path / "out.json", "--value-codec", "utf8"], r"try (--value-codec \w+)")
    follows([src, tmp_path / "out.dat", *flag.split(), "--verify"])


@pytest.mark.parametrize("content", [b"a,b\n1,2\n", b"\x00\x01garbage"])
def test_a_file_no_format_claims(tmp_path, content):
    src = tmp_path / "data.txt"
    src.write_bytes(content)
    flag = refused([src, tmp_path / "out.json"], r"give one with (--from)")
    r = convert(src, tmp_path / "out.json", flag, "jsonl")  # followed: now a clear answer about that format
    assert r.returncode == 1 and "data.txt" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
