"""A conversion killed at any moment leaves the output absent or complete, never partial.

For every format this interpreter can write, a real ``python -m converter`` subprocess is
killed with SIGKILL at seeded random moments (before it starts writing, while it writes,
while it renames, after it is done). Then: the output (every file of it) is either absent or
a complete, readable store with every record; the input is byte-identical; and the only
other thing that may remain is the hidden temporary directory ``.OUT.*.converting`` that
the killed process was writing in (nothing can clean up after SIGKILL; it never carries the
output's name). Ctrl-C (SIGINT) is the same, except that the process cleans up after itself:
exit status 130 and nothing left at all.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import converter
from converter.registry import get_registry

SINKS = ["pickle", "json", "jsonl", "shelve", "dbm.dumb", "dbm.sqlite3", "sqlite", "gdbm-dump", "db_dump"]
SLOW_SINKS = {"shelve": 30_000, "dbm.dumb": 30_000}  # dbm.dumb writes a record at a time
RECORDS = 80_000
KILLS = 3
ENV = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}


def _write_input(path: Path, n: int):
    with open(path, "w") as f:
        for i in range(n):
            f.write('{"key": "k%d", "value": {"name": "person %d", "age": %d, "pay": %d}}\n' % (i, i, i % 90, i * 3))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash-inputs")
    made = {}
    for n in {RECORDS, *SLOW_SINKS.values()}:
        _write_input(d / f"in{n}.jsonl", n)
        made[n] = d / f"in{n}.jsonl"
    return made


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parts(fmt: str, out: Path) -> list[Path]:
    return get_registry().format(fmt).parts(out)


def _start(src: Path, out: Path, fmt: str):
    return subprocess.Popen([sys.executable, "-m", "converter", str(src), str(out), "--to", fmt, "-q"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)


def _check_after(out_dir: Path, out: Path, fmt: str, n: int, *, temp_allowed: bool):
    """The output is absent or complete; nothing else but (maybe) the hidden temporary directory."""
    parts = _parts(fmt, out)
    present = [p for p in parts if p.exists()]
    names = {p.name for p in parts}
    others = [p.name for p in out_dir.iterdir() if p.name not in names]
    temp = re.compile(rf"\.{re.escape(out.name)}\..+\.converting$")
    assert all(temp.match(o) for o in others) and (temp_allowed or not others), f"left behind: {others}"
    if not present:
        return "absent"
    missing = [p.name for p in parts if p.suffix != ".bak" and not p.exists()]  # dbm.dumb's .bak is optional
    assert not missing, f"only some files of the output exist: {missing} are missing"
    records = list(converter.read_records(out, from_=fmt, options=converter.Options(key_codec="utf8")))
    assert len(records) == n, f"{len(records)} of {n} records"
    key, value = records[0]
    value.pop("key", None) if fmt == "sqlite" else None  # the table's primary-key column
    assert (key, value) == ("k0", {"name": "person 0", "age": 0, "pay": 0})
    assert records[-1][0] == f"k{n - 1}"
    return "complete"


@pytest.mark.parametrize("fmt", SINKS)
def test_sigkill_at_random_moments(tmp_path, inputs, fmt):
    n = SLOW_SINKS.get(fmt, RECORDS)
    src = inputs[n]
    before = _digest(src)
    rng = random.Random(f"crash-{fmt}")
    # uninterrupted runs: how long a conversion takes (the faster of two: a busy machine can
    # slow one down, and kills timed from it would all land after the end), and that it is valid
    took = None
    for attempt in range(2):
        out_dir = tmp_path / f"calibrate{attempt}"
        out_dir.mkdir()
        started = time.monotonic()
        proc = _start(src, out_dir / "out", fmt)
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
        elapsed = time.monotonic() - started
        took = elapsed if took is None else min(took, elapsed)
        assert _check_after(out_dir, out_dir / "out", fmt, n, temp_allowed=False) == "complete"
    outcomes = []
    for i in range(KILLS):
        out_dir = tmp_path / f"kill{i}"
        out_dir.mkdir()
        out = out_dir / "out"
        delay = rng.uniform(0.15, 1.1) * took  # mostly while it writes; sometimes after it is done
        proc = _start(src, out, fmt)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stderr.close()
        outcomes.append(_check_after(out_dir, out, fmt, n, temp_allowed=True))
        assert _digest(src) == before, "the input changed"
    if "absent" not in outcomes:  # a busy machine made every timed kill land after the end:
        outcomes.append(_kill_while_writing(src, tmp_path / "kill-writing", fmt, n))  # one that cannot
    assert "absent" in outcomes, f"no kill landed before the end ({outcomes}, a run takes {took:.2f}s)"


def _kill_while_writing(src: Path, out_dir: Path, fmt: str, n: int) -> str:
    """Kill as soon as the hidden temporary directory appears: the output is being written."""
    out_dir.mkdir()
    out = out_dir / "out"
    proc = _start(src, out, fmt)
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".converting") for p in out_dir.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the conversion never began writing"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    return _check_after(out_dir, out, fmt, n, temp_allowed=True)


@pytest.mark.parametrize("fmt", SINKS)
def test_ctrl_c_cleans_up(tmp_path, inputs, fmt):
    n = SLOW_SINKS.get(fmt, RECORDS)
    src = inputs[n]
    before = _digest(src)
    out = tmp_path / "out"
    proc = _start(src, out, fmt)
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".converting") for p in tmp_path.iterdir()):  # it is writing
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1].decode()
    assert _digest(src) == before
    if proc.returncode == 0:  # it finished first: then the output is whole
        assert _check_after(tmp_path, out, fmt, n, temp_allowed=False) == "complete"
        return
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "Ctrl-C left files behind"
