"""Ctrl-C and failures mid-conversion leave nothing behind."""

import os
import signal
import subprocess
import sys
import time

import pytest


def _big_jsonl(path, n=400_000):
    with open(path, "w") as f:
        for i in range(n):
            f.write('{"key": "k%d", "value": {"name": "person %d", "age": %d, "pay": %d}}\n' % (i, i, i % 90, i * 3))


def _ctrl_c_once(args, ready):
    """Run convert ``args``; once ``ready()`` holds (and a moment more), send Ctrl-C. Skips the
    test when the run finished before the signal came."""
    p = subprocess.Popen([sys.executable, "-m", "converter", *args], stderr=subprocess.PIPE,
                         env={**os.environ, "CONVERTER_LOAD_PLUGINS": ""})
    deadline = time.monotonic() + 60
    while not ready():
        assert p.poll() is None, p.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=60)[1].decode()
    if p.returncode == 0:
        pytest.skip("the conversion finished before the signal arrived")
    return p, err


@pytest.mark.parametrize("out_name", ["out.sqlite", "out.pkl", "out.json", "out"])
def test_ctrl_c_leaves_nothing(tmp_path, out_name):
    src = tmp_path / "in.jsonl"
    _big_jsonl(src)
    before = sorted(os.listdir(tmp_path))
    extra = ["--to", "dbm.dumb"] if out_name == "out" else []
    p, err = _ctrl_c_once([str(src), str(tmp_path / out_name), *extra],
                          lambda: any(n.endswith(".converting") for n in os.listdir(tmp_path)))
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == before


def test_scratch_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    import pickle
    import subprocess

    from converter import convert

    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps({"a": 1}))
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".out.json.{dead.pid}.abc123.converting"
    stale.mkdir()
    (stale / "out.json").write_text("half")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        live = tmp_path / f".out.json.{sleeper.pid}.def456.converting"
        live.mkdir()
        convert(src, tmp_path / "out.json")
        assert not stale.exists()
        assert live.exists(), "a running conversion's scratch directory must be left alone"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_ctrl_c_while_verifying_says_the_output_was_written_but_not_verified(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.sqlite"
    _big_jsonl(src)
    p, err = _ctrl_c_once([str(src), str(out), "--verify"], out.exists)  # committed: the comparison has begun
    assert p.returncode == 130, err
    assert "but not verified" in err and "nothing was written" not in err and "Traceback" not in err
    assert out.exists()


def test_dry_run_errors_name_the_output_not_the_scratch_directory(tmp_path):
    import importlib.util
    import pickle

    if importlib.util.find_spec("_gdbm") is not None:
        pytest.skip("needs a Python without _gdbm, whose dbm.gnu writer refuses")
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps({"a": "b"}))
    r = subprocess.run([sys.executable, "-m", "converter", str(src), str(tmp_path / "out.gdbm"), "--dry-run"],
                       capture_output=True, text=True, env={**os.environ, "CONVERTER_LOAD_PLUGINS": ""})
    assert r.returncode == 1
    assert f"{tmp_path / 'out.gdbm'}: writing dbm.gnu" in r.stderr and "dry-run-" not in r.stderr, r.stderr
