"""`convert verify A B`, `convert IN OUT --verify` and `--dry-run`."""

import pickle

import pytest
from typer.testing import CliRunner

from converter import convert
from converter.cli import app
from converter.testing import TRICKY, TRICKY_WITH_BINARY_KEY
from converter.verify import canonical, compare

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def pkl(path, data):
    path.write_bytes(pickle.dumps(data))
    return path


@pytest.mark.parametrize("fmt, name", [("json", "b.json"), ("jsonl", "b.jsonl"), ("sqlite", "b.sqlite"),
                                       ("dbm.dumb", "b"), ("dbm.sqlite3", "b.db3"), ("pickle", "b.pkl")])
def test_equal_stores_of_different_formats(tmp_path, fmt, name):
    a = pkl(tmp_path / "a.pkl", TRICKY_WITH_BINARY_KEY)
    convert(a, tmp_path / name, to=fmt)
    r = run("verify", a, tmp_path / name, "--format-b", fmt)
    assert r.exit_code == 0, r.output
    assert f"{len(TRICKY_WITH_BINARY_KEY)} record(s)" in r.stdout and "equal" in r.stdout


def test_differences_are_counted_and_shown(tmp_path):
    a = pkl(tmp_path / "a.pkl", {"same": 1, "changed": [1, 2], "gone": "x", "int": 1})
    b = pkl(tmp_path / "b.pkl", {"same": 1, "changed": [1, 3], "new": "y", "int": 1.0})
    r = run("verify", a, b)
    assert r.exit_code == 1
    out = r.stdout
    assert "2 record(s) differ" in out  # [1,2] vs [1,3], and 1 vs 1.0 (types matter)
    assert "'changed': [1, 2] != [1, 3]" in out
    assert "only in" in out and "'gone'" in out and "'new'" in out


def test_canonical_form_is_strict_about_types_and_lenient_about_order():
    assert canonical(1) != canonical(1.0) != canonical(True)
    assert canonical({1: "a", 2: "b"}) == canonical({2: "b", 1: "a"})
    assert canonical(float("nan")) == canonical(float("nan"))
    assert canonical(b"x") != canonical("x") and canonical((1,)) != canonical([1])


def test_convert_verify_passes_for_a_lossless_conversion(tmp_path):
    a = pkl(tmp_path / "a.pkl", TRICKY)
    r = run(a, tmp_path / "out.sqlite", "--verify")
    assert r.exit_code == 0, r.output
    assert f"verified: {len(TRICKY)} record(s)" in r.stderr


def test_convert_verify_catches_a_lossy_conversion(tmp_path):
    a = pkl(tmp_path / "a.pkl", {"b": b"bytes", "t": (1, 2)})
    r = run(a, tmp_path / "out.json", "--json-style", "plain", "--verify")
    assert r.exit_code == 1
    assert "verification failed" in r.stderr and "2 record(s) differ" in r.stderr


def test_dry_run_writes_nothing_and_reports_changes(tmp_path):
    a = pkl(tmp_path / "a.pkl", {"b": b"bytes", "t": (1, 2)})
    r = run(a, tmp_path / "out.json", "--json-style", "plain", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "plain JSON changed" in r.stderr and "bytes" in r.stderr and "nothing was written" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pkl"]


def test_dry_run_reports_a_refusal(tmp_path):
    a = pkl(tmp_path / "a.pkl", {b"binary key": 1})
    r = run(a, tmp_path / "out.shelve", "--dry-run")
    assert r.exit_code == 1 and "--key-codec" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pkl"]


def test_dry_run_notes_an_existing_output(tmp_path):
    a = pkl(tmp_path / "a.pkl", {"k": 1})
    (tmp_path / "out.json").write_text("old")
    r = run(a, tmp_path / "out.json", "--dry-run")
    assert r.exit_code == 0 and "needs --force" in r.stderr
    assert (tmp_path / "out.json").read_text() == "old"


def test_verify_needs_real_files(tmp_path):
    a = pkl(tmp_path / "a.pkl", {"k": 1})
    assert run(a, "-", "--to", "json", "--verify").exit_code == 2
