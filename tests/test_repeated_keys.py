"""Repeated keys: kept by default in JSON, counted everywhere, and no uniqueness claim trusted.

The stores come from the real software (Berkeley DB with duplicates via Debian's bsddb3,
dbm.sqlite3 from Python 3.13's own module, SQLite), altered where a case needs it; every
conversion runs through the real command line.
"""

import json
import math
import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

DEBIAN_PY = "/usr/bin/python3"
PY313 = "/root/.pyenv/versions/3.13.0/bin/python"
ENV = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}


def convert(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True,
                          env=ENV, timeout=120, input=stdin)


def jsonl_records(path: Path) -> list:
    return [(x["key"], x["value"]) for x in map(json.loads, path.read_text().splitlines())]


def _runs(py, code) -> bool:
    return Path(py).exists() and subprocess.run([py, "-c", code], capture_output=True).returncode == 0


BDB_DUPS = r"""
import sys
from bsddb3 import db
d = db.DB()
d.set_flags(db.DB_DUP)
d.open(sys.argv[1], None, db.DB_HASH, db.DB_CREATE)
for i in range(50):
    d.put(b"k%d" % i, b"only %d" % i)
for v in (b"first", b"second", b"third"):
    d.put(b"dup", v)
d.close()
"""


@pytest.mark.skipif(not _runs(DEBIAN_PY, "import bsddb3"), reason="needs Debian's python3-bsddb3")
def test_berkeley_db_duplicates_convert_to_json_by_default_and_keep_every_pair(tmp_path):
    src = tmp_path / "dups.db"
    subprocess.run([DEBIAN_PY, "-c", BDB_DUPS, str(src)], check=True)
    r = convert(src, tmp_path / "out.json")
    assert r.returncode == 0, r.stderr
    assert b"every record was kept" in r.stderr and b"'dup'" in r.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    assert list(doc) == ["$records"]
    pairs = doc["$records"]
    assert len(pairs) == 53
    assert [v for k, v in pairs if k == "dup"] == ["first", "second", "third"]  # stored order
    # and it reads back with the same multiplicity
    r = convert(tmp_path / "out.json", tmp_path / "back.jsonl")
    assert r.returncode == 0, r.stderr
    back = jsonl_records(tmp_path / "back.jsonl")
    assert sorted(map(tuple, pairs)) == sorted(back)
    # a dict-shaped output stays the default when no key repeats
    r = convert(tmp_path / "back.jsonl", tmp_path / "again.json")
    assert r.returncode == 0
    assert json.loads((tmp_path / "again.json").read_text())["$records"] == pairs


def test_json_lines_without_repeats_stays_an_object(tmp_path):
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"key": f"k{i}", "value": i}) + "\n" for i in range(20)))
    assert convert(tmp_path / "a.jsonl", tmp_path / "a.json").returncode == 0
    assert json.loads((tmp_path / "a.json").read_text()) == {f"k{i}": i for i in range(20)}


def test_repeated_keys_from_stdin_to_json_are_refused_naming_the_key(tmp_path):
    lines = b"".join(json.dumps({"key": k, "value": i}).encode() + b"\n" for i, k in enumerate("abcab"))
    r = convert("-", tmp_path / "out.json", "--from", "jsonl", stdin=lines)
    assert r.returncode == 1 and b"'a'" in r.stderr and b".jsonl" in r.stderr and b"Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_keys_equal_in_python_are_counted_in_a_pickle_output(tmp_path):
    """1, 1.0 and true are distinct JSON keys but one key in the pickled dict: counted, later wins."""
    (tmp_path / "a.jsonl").write_text('{"key": 1, "value": "int"}\n{"key": 1.0, "value": "float"}\n'
                                      '{"key": true, "value": "bool"}\n{"key": "1", "value": "str"}\n')
    r = convert(tmp_path / "a.jsonl", tmp_path / "a.pkl")
    assert r.returncode == 0, r.stderr
    assert b"2 key(s) occurred more than once" in r.stderr
    assert pickle.loads((tmp_path / "a.pkl").read_bytes()) == {1: "bool", "1": "str"}


def test_two_nan_keys_never_make_a_json_member_twice(tmp_path):
    src = tmp_path / "nan.pkl"
    src.write_bytes(pickle.dumps({float("nan"): "a", float("nan"): "b", "x": 1}))
    r = convert(src, tmp_path / "out.json")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    assert list(doc) == ["$records"] and len(doc["$records"]) == 3
    r = convert(tmp_path / "out.json", tmp_path / "back.jsonl")  # and convert reads its own output
    assert r.returncode == 0, r.stderr
    assert len(jsonl_records(tmp_path / "back.jsonl")) == 3


@pytest.mark.skipif(not _runs(PY313, "import dbm.sqlite3"), reason="needs Python 3.13's dbm.sqlite3")
def test_dbm_sqlite3_keys_equal_as_blobs_are_not_trusted_to_be_unique(tmp_path):
    """Python 3.13's dbm.sqlite3 file, then rows whose keys differ in type but not as blobs."""
    src = tmp_path / "store.sqlite3"
    subprocess.run([PY313, "-c", "import dbm.sqlite3, sys\nwith dbm.sqlite3.open(sys.argv[1], 'c') as db:\n"
                    "    db[b'a'] = b'x'\n    db[b'1'] = b'blob'\n", str(src)], check=True)
    con = sqlite3.connect(src)
    with con:
        con.execute("INSERT INTO Dict (key, value) VALUES (1, CAST('int' AS BLOB))")
        con.execute("INSERT INTO Dict (key, value) VALUES ('1', CAST('text' AS BLOB))")
    con.close()
    r = convert(src, tmp_path / "out.pkl", "--from", "dbm.sqlite3")
    assert r.returncode == 0, r.stderr
    assert b"2 key(s) occurred more than once" in r.stderr
    out = pickle.loads((tmp_path / "out.pkl").read_bytes())
    assert set(out) == {"a", "1"}
    r = convert(src, tmp_path / "out.json", "--from", "dbm.sqlite3")
    assert r.returncode == 0, r.stderr
    pairs = json.loads((tmp_path / "out.json").read_text())["$records"]
    assert sorted(v for k, v in pairs if k == "1") == ["blob", "int", "text"]


def test_a_sqlite_key_value_table_without_a_unique_key_keeps_every_record_in_json(tmp_path):
    src = tmp_path / "kv.sqlite"
    con = sqlite3.connect(src)
    with con:
        con.execute('CREATE TABLE kv (key TEXT, value "JSON TEXT")')
        con.executemany("INSERT INTO kv VALUES (?, ?)", [("a", "1"), ("b", "2"), ("a", "3"), (None, "4"), (None, "5")])
    con.close()
    r = convert(src, tmp_path / "out.json")
    assert r.returncode == 0, r.stderr
    pairs = json.loads((tmp_path / "out.json").read_text())["$records"]
    assert len(pairs) == 5
    r = convert(src, tmp_path / "out.pkl")
    assert r.returncode == 0 and b"2 key(s) occurred more than once" in r.stderr


def test_a_repeat_far_into_a_large_store_is_still_found_kept_in_json_and_counted_elsewhere(tmp_path):
    """Past the first 65,536 keys the fingerprints go to buckets and a repeat among them is found
    at the end of the stream (converter/keyset.py): the JSON output is then written again as
    pairs, the pickle output counts it."""
    n = 70_000
    lines = [json.dumps({"key": f"k{i}", "value": i}) for i in range(n)]
    lines.append(json.dumps({"key": f"k{n - 1}", "value": "again"}))  # far past the held keys
    src = tmp_path / "big.jsonl"
    src.write_text("\n".join(lines) + "\n")
    r = convert(src, tmp_path / "out.json")
    assert r.returncode == 0, r.stderr
    assert b"occurs more than once" in r.stderr
    pairs = json.loads((tmp_path / "out.json").read_text())["$records"]
    assert len(pairs) == n + 1 and pairs[-1] == [f"k{n - 1}", "again"]
    r = convert(src, tmp_path / "out.pkl")
    assert r.returncode == 0, r.stderr
    assert b"1 key(s) overridden" in r.stderr
    with open(tmp_path / "out.pkl", "rb") as f:
        out = pickle.load(f)
    assert len(out) == n and out[f"k{n - 1}"] == "again"


def test_a_gdbm_slot_copied_lists_its_key_twice_and_nothing_is_merged_silently(tmp_path):
    """A bucket element copied into an empty slot of its bucket: gdbm's own iteration lists the
    key twice, and so does the pure reader; JSON keeps both records, pickle counts the repeat."""
    import struct

    from test_gdbm import _dir_entries, _hdr, fixture_bytes

    data = bytearray(fixture_bytes("small512.db"))
    _, entries = _dir_entries(data)
    elems = _hdr(data)[6]
    for b in entries:
        slots = [b + 112 + 24 * i for i in range(elems)]
        used = [at for at in slots if struct.unpack_from("<i", data, at)[0] != -1]
        empty = [at for at in slots if struct.unpack_from("<i", data, at)[0] == -1]
        if used and empty:
            break
    data[empty[0]:empty[0] + 24] = data[used[0]:used[0] + 24]
    struct.pack_into("<i", data, b + 108, struct.unpack_from("<i", data, b + 108)[0] + 1)
    src = tmp_path / "copied.gdbm"
    src.write_bytes(bytes(data))
    r = convert(src, tmp_path / "out.json")
    assert r.returncode == 0, r.stderr
    pairs = json.loads((tmp_path / "out.json").read_text())["$records"]
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)) + 1  # every record kept, the copied one twice
    r = convert(src, tmp_path / "out.pkl")
    assert r.returncode == 0 and b"1 key(s) occurred more than once" in r.stderr, r.stderr


def test_two_null_primary_keys_in_sqlite_are_two_records_not_one(tmp_path):
    src = tmp_path / "nulls.sqlite"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE people (name TEXT PRIMARY KEY, age INTEGER)")  # SQLite lets a TEXT key be NULL
    con.executemany("INSERT INTO people VALUES (?, ?)", [(None, 1), (None, 2), ("ann", 3)])
    con.commit()
    con.close()
    r = convert(src, tmp_path / "out.json")
    assert r.returncode == 0, r.stderr
    pairs = json.loads((tmp_path / "out.json").read_text())["$records"]
    assert [k for k, _ in pairs] == [None, None, "ann"]
    r = convert(src, tmp_path / "out.pkl")
    assert r.returncode == 0 and b"1 key(s) occurred more than once; the later record was kept" in r.stderr
