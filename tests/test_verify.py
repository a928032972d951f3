"""`convert verify A B`, `convert IN OUT --verify` and `--dry-run`."""

import json
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
    assert r.exit_code == 1 and "record b'binary key'" in r.stderr and "stores every key with the utf8 codec" in r.stderr
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


# -- the digest buckets: what is held, what spills, and that both give the same answer --------

def _stores(tmp_path):
    a = {f"k{i}": {"n": i, "tags": ["x", i % 7]} for i in range(3000)}
    b = dict(a)
    b["k5"] = {"n": 5, "tags": ["x", 6]}      # a changed value
    b["k6"] = {"tags": ["x", 6], "n": 6}      # member order only: equal
    del b["k7"]                               # only in A
    b["new"] = 1                              # only in B
    b["k8"] = {"n": 8.0, "tags": ["x", 1]}    # 8 vs 8.0: types matter
    return pkl(tmp_path / "a.pkl", a), pkl(tmp_path / "b.pkl", b)


@pytest.mark.parametrize("spill", [False, True])
def test_comparison_is_the_same_in_memory_and_spilled_to_disk(tmp_path, monkeypatch, spill):
    import converter.verify as verify

    if spill:  # a few records per spill, so every bucket goes to disk many times
        monkeypatch.setattr(verify, "SPILL_BYTES", 32 * 50)
    made = []
    real = verify.Buckets.spill
    monkeypatch.setattr(verify.Buckets, "spill", lambda self: (made.append(1), real(self)))
    a, b = _stores(tmp_path)
    result = compare(a, b)
    assert bool(made) is spill
    assert (result.a_records, result.b_records) == (3000, 3000)
    assert (result.n_different, result.n_only_in_a, result.n_only_in_b) == (2, 1, 1)
    assert sorted(result.different) == ["k5", "k8"]
    assert result.only_in_a == ["k7"] and result.only_in_b == ["new"]


def test_a_repeated_key_compares_by_its_last_value_in_every_bucket_path(tmp_path, monkeypatch):
    import converter.verify as verify

    monkeypatch.setattr(verify, "SPILL_BYTES", 32 * 3)
    lines = [json.dumps({"key": f"k{i}", "value": i}) for i in range(50)]
    lines += [json.dumps({"key": "k1", "value": "later"})]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    b = {f"k{i}": i for i in range(50)}
    b["k1"] = "later"
    r = run("verify", tmp_path / "a.jsonl", pkl(tmp_path / "b.pkl", b))
    assert r.exit_code == 1  # 51 records against 50: the counts differ, every key matches
    assert "51 record(s)" in r.stdout
    assert (f"a.jsonl holds 1 more record(s) of a key it already has: 'k1'; {tmp_path / 'b.pkl'} keeps one "
            f"record per key (JSON Lines, --to jsonl, keeps every record)") in r.stdout, r.stdout
    assert "differ" not in r.stdout
    from converter.verify import compare

    result = compare(tmp_path / "a.jsonl", tmp_path / "b.pkl")
    assert (result.n_repeated_a, result.repeated_in_a, result.n_repeated_b, result.repeated_in_b) == (1, ["k1"], 0, [])


def test_batched_canonical_texts_equal_the_one_by_one_canonical_form():
    from converter.testing import TRICKY
    from converter.verify import canonical_texts

    plain = [{"b": 1, "a": [1, 2.5, None, True, "é"]}, "x", [], {}, -3, {"z": {"y": 1, "x": 2}}]
    for batch in (plain, list(TRICKY.values()), plain + list(TRICKY.values()), list(TRICKY)):
        assert canonical_texts(batch) == [canonical(v) for v in batch]
