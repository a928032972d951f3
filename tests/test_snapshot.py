"""A source is read as one consistent state: a SQLite file in one read transaction, and any
file that changes while it is read is an error with nothing written.

Real concurrent writers: a second process appends to the file, or commits to the database,
while the real command line converts it.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}


def start_convert(*args):
    return subprocess.Popen([sys.executable, "-m", "converter", *map(str, args), "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def test_a_file_that_grows_while_it_is_read_is_refused_and_nothing_is_written(tmp_path):
    src = tmp_path / "big.jsonl"
    with open(src, "w") as f:
        for i in range(200_000):
            f.write(json.dumps({"key": f"k{i}", "value": i}) + "\n")
    proc = start_convert(src, tmp_path / "out" / "out.json")
    (tmp_path / "out").mkdir()
    n = 200_000
    while proc.poll() is None:  # a writer appending records all the time the conversion runs
        with open(src, "a") as f:
            f.write(json.dumps({"key": f"k{n}", "value": n}) + "\n")
        n += 1
        time.sleep(0.02)
    err = proc.stderr.read()
    assert proc.returncode == 1, err
    assert "changed while it was read" in err and str(src) in err and "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []


WRITER = r"""
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=0.05, isolation_level=None)
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE t SET state = state + 1")
        con.execute("COMMIT")
    except sqlite3.OperationalError:  # the reader's lock: try again
        try:
            con.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass
    time.sleep(0.01)
"""


def test_a_sqlite_source_is_one_committed_state_while_a_writer_commits(tmp_path):
    src = tmp_path / "live.sqlite"
    con = sqlite3.connect(src)
    with con:
        con.execute("CREATE TABLE t (key TEXT PRIMARY KEY, state INTEGER, pad TEXT)")
        con.executemany("INSERT INTO t VALUES (?, 0, ?)", ((f"k{i}", "x" * 50) for i in range(100_000)))
    con.close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(src), "6"])
    try:
        time.sleep(0.3)  # the writer is committing by now
        proc = start_convert(src, tmp_path / "out.jsonl")
        out, err = proc.communicate(timeout=120)
    finally:
        writer.kill()
        writer.wait()
    if proc.returncode == 1:  # a commit between the first look and the read lock: refused, not mixed
        assert "changed while it was read" in err and not (tmp_path / "out.jsonl").exists(), err
        return
    assert proc.returncode == 0, err
    states = {json.loads(line)["value"]["state"] for line in (tmp_path / "out.jsonl").read_text().splitlines()}
    assert len(states) == 1, f"rows from {len(states)} committed states"


DEBIAN_PY = "/usr/bin/python3"
MAKE_GDBM = r"""
import dbm.gnu, sys
db = dbm.gnu.open(sys.argv[1], "n")
for i in range(int(sys.argv[2])):
    db[b"key%d" % i] = b"value %d " % i + b"x" * 40
db.close()
"""


def _has_gnu():
    return Path(DEBIAN_PY).exists() and subprocess.run([DEBIAN_PY, "-c", "import dbm.gnu"],
                                                       capture_output=True).returncode == 0



@pytest.mark.skipif(not _has_gnu(), reason="needs Debian's python3-gdbm")
def test_a_gdbm_file_truncated_while_it_is_read_is_an_error_not_a_crash(tmp_path):
    src = tmp_path / "store.gdbm"
    subprocess.run([DEBIAN_PY, "-c", MAKE_GDBM, str(src), "100000"], check=True)
    (tmp_path / "out").mkdir()
    proc = start_convert(src, tmp_path / "out" / "out.jsonl")
    time.sleep(0.3)
    os.truncate(src, src.stat().st_size // 2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (proc.returncode, err)  # never -7 (SIGBUS)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(src) in err
    assert list((tmp_path / "out").iterdir()) == []


def test_a_mapped_file_that_shrinks_is_seen_at_the_next_check(tmp_path, monkeypatch):
    import converter.fileio as fileio
    from converter.errors import FormatError

    monkeypatch.setattr(fileio, "READ_WHOLE", 0)  # map even a small file
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 100_000)
    with open(path, "rb") as f:
        fb = fileio.FileBytes(f, str(path))
    assert fb.mapped
    fb.check()
    os.truncate(path, 10)
    with pytest.raises(FormatError, match="shrank from 100,000 to 10 bytes"):
        fb.check()
    fb.close()
