"""Codecs fit every record of a store, not just the first ones (converter/codecs.py).

The stores are made by the real C gdbm library (Debian's Python with python3-gdbm); the
conversions run through the real command line, in a subprocess, as users run them.
"""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

DEBIAN_PY = "/usr/bin/python3"
ENV = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}


def _has_gnu() -> bool:
    return Path(DEBIAN_PY).exists() and subprocess.run(
        [DEBIAN_PY, "-c", "import dbm.gnu"], capture_output=True).returncode == 0


needs_gdbm = pytest.mark.skipif(not _has_gnu(), reason="needs Debian's python3-gdbm")

MAKE = r"""
import dbm.gnu, pickle, sys
records = pickle.loads(sys.stdin.buffer.read())
db = dbm.gnu.open(sys.argv[1], "n")
for k, v in records:
    db[k] = v
db.close()
"""

READ = r"""
import dbm.gnu, pickle, sys
db = dbm.gnu.open(sys.argv[1], "r")
out = {}
k = db.firstkey()
while k is not None:
    out[k] = db[k]
    k = db.nextkey(k)
sys.stdout.buffer.write(pickle.dumps(out))
"""

LAST_TO_TEXT = r"""
import dbm.gnu, sys
db = dbm.gnu.open(sys.argv[1], "w")
k = last = db.firstkey()
while k is not None:
    last, k = k, db.nextkey(k)
db[last] = b"plain text, not a pickle"
db.close()
print(last.decode())
"""


def make_gdbm(path: Path, records: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    subprocess.run([DEBIAN_PY, "-c", MAKE, str(path)], input=pickle.dumps(records), check=True)
    return dict(records)


def read_gdbm_with_c(path: Path) -> dict[bytes, bytes]:
    return pickle.loads(subprocess.run([DEBIAN_PY, "-c", READ, str(path)], capture_output=True, check=True).stdout)


def convert(*args):
    return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=120)


def read_back(path, *args):
    """The records of ``path`` as this tool reads them (through the library, after the CLI wrote it)."""
    from converter import read_records

    return dict(read_records(path))


@needs_gdbm
def test_mostly_text_store_with_a_binary_value_at_the_end_converts_by_default(tmp_path):
    records = [(f"key{i}".encode(), f"value {i} é".encode()) for i in range(500)]
    records.append((b"blob", b"\x89PNG\r\n\x1a\n\xff\xfe"))
    src = tmp_path / "store.gdbm"
    make_gdbm(src, records)
    r = convert(src, tmp_path / "out.json")
    assert r.returncode == 0, r.stderr
    assert "utf8-or-raw" in r.stderr  # the choice is named
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["key7"] == "value 7 é"  # text stays text, not base64
    assert doc["blob"] == {"$bytes": "iVBORw0KGgr//g=="}
    assert len(doc) == 501


@needs_gdbm
def test_the_json_converts_back_to_a_dbm_store_byte_for_byte(tmp_path):
    records = [(f"k{i}".encode(), f"text {i}".encode()) for i in range(300)]
    records.insert(150, (b"k-bin", bytes(range(256))))
    records.append((b"\xff\xfe binary key", b"v"))
    src = tmp_path / "store.gdbm"
    expected = make_gdbm(src, records)
    assert convert(src, tmp_path / "out.json").returncode == 0
    r = convert(tmp_path / "out.json", tmp_path / "back", "--to", "dbm.dumb")
    assert r.returncode == 0, r.stderr
    import dbm.dumb

    with dbm.dumb.open(str(tmp_path / "back"), "r") as db:
        back = {k: db[k] for k in db.keys()}
    assert back == expected == read_gdbm_with_c(src)
    # and the copy verifies against the original, both read with the same rule
    v = convert("verify", src, tmp_path / "back")
    assert v.returncode == 0, v.stdout + v.stderr


@needs_gdbm
def test_pickled_values_then_one_that_is_not_restarts_and_says_so(tmp_path):
    records = [(f"k{i}".encode(), pickle.dumps({"n": i}, protocol=2)) for i in range(200)]
    src = tmp_path / "shelf.gdbm"
    make_gdbm(src, records)
    # the last record in gdbm's own order gets a value that is not a pickle
    late = subprocess.run([DEBIAN_PY, "-c", LAST_TO_TEXT, str(src)], capture_output=True, check=True,
                          text=True).stdout.strip()
    r = convert(src, tmp_path / "out.jsonl")
    assert r.returncode == 0, r.stderr
    assert "values not read as pickle" in r.stderr, r.stderr
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    got = {x["key"]: x["value"] for x in lines}
    b64 = __import__("base64").b64encode
    # one codec reads every value: raw, as most are binary; the text one is kept as its bytes
    assert len(got) == 200 and got[late] == {"$bytes": b64(b"plain text, not a pickle").decode()}
    assert lines[-1]["key"] == late  # it really came after the first records
    k3 = "k3" if late != "k3" else "k4"
    assert got[k3] == {"$bytes": b64(pickle.dumps({"n": int(k3[1:])}, protocol=2)).decode()}
    assert [p.name for p in tmp_path.iterdir()] and not [p for p in tmp_path.iterdir() if "converting" in p.name]


def test_writing_restarts_when_a_later_value_does_not_fit(tmp_path):
    data = {f"k{i}": f"v{i}" for i in range(300)}
    data["late-bytes"] = b"\xff\x00 not text"
    data["late-ascii-bytes"] = b"abc"  # bytes that look like text must not come back as str
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps(data))
    r = convert(src, tmp_path / "out", "--to", "dbm.dumb")
    assert r.returncode == 0, r.stderr
    assert "again" in r.stderr
    back = read_back(tmp_path / "out")
    assert back == data and type(back["late-ascii-bytes"]) is bytes


def test_a_forced_codec_that_does_not_fit_is_still_an_error(tmp_path):
    data = {f"k{i}": f"v{i}" for i in range(10)}
    data["late"] = 5
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps(data))
    r = convert(src, tmp_path / "out", "--to", "dbm.dumb", "--value-codec", "utf8")
    assert r.returncode == 1 and "'late'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.dat").exists()
