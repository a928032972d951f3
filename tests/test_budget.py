"""Hostile input, second round: the resource budget (converter/budget.py).

Every input is generated here, small, and run through the real command line in a child
process under an address-space limit of 2 GiB and a 30-second timeout. The promise checked:
exit 0 or 1, and on 1 exactly one error line that names the file, no traceback, no
"internal error", and nothing left in the output directory.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from converter.budget import Budget, BudgetError, using
from converter.errors import ConverterError

LIMIT_AS = 2 * 2**30
SECONDS = 30


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))


def cli(*args, env=None, stdin=subprocess.DEVNULL):
    proc = subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True,
                          text=True, timeout=SECONDS, preexec_fn=_limit, stdin=stdin,
                          env={**os.environ, "CONVERTER_LOAD_PLUGINS": "", **(env or {})})
    return proc


def assert_clean(proc, name, out_dir=None, words=()):
    """Exit 0 or 1; on 1 one error line naming ``name`` (and ``words``), nothing left behind."""
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-2000:]
    if proc.returncode == 1:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("convert: error:")]
        assert len(errors) == 1, proc.stderr[-2000:]
        assert name in errors[0], errors[0]
        for word in words:
            assert word in errors[0], errors[0]
        if out_dir is not None:
            assert list(Path(out_dir).iterdir()) == [], list(Path(out_dir).iterdir())
    return proc


def refused(src, tmp_path, out_name="out.json", *args, words=(), env=None):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    proc = cli(src, out / out_name, *args, env=env)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    return assert_clean(proc, Path(src).name, out, words)


# -- pickle bytes, written opcode by opcode -------------------------------------------------

def _long(n: int) -> bytes:  # LONG1 / LONG4
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    if len(data) < 256:
        return b"\x8a" + bytes([len(data)]) + data
    return b"\x8b" + len(data).to_bytes(4, "little") + data


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _range(n: int) -> bytes:
    return _global("__builtin__", "xrange") + _long(n) + b"\x85R"


def _record(value_ops: bytes) -> bytes:
    """{'k': value} at protocol 2."""
    return b"\x80\x02}X\x01\x00\x00\x00k" + value_ops + b"s."


CONSTRUCTOR_BOMBS = {
    "bytearray(1.5e9)": _global("__builtin__", "bytearray") + _long(1_500_000_000) + b"\x85R",
    "bytes(1.5e9)": _global("builtins", "bytes") + _long(1_500_000_000) + b"\x85R",
    "_reconstructor(bytearray, bytearray, 1.2e9)": _global("copy_reg", "_reconstructor")
    + _global("__builtin__", "bytearray") + _global("__builtin__", "bytearray") + _long(1_200_000_000) + b"\x87R",
    "list(range(2e8))": _global("__builtin__", "list") + _range(200_000_000) + b"\x85R",
    "frozenset(range(3e7))": _global("__builtin__", "frozenset") + _range(30_000_000) + b"\x85R",
    "set(range(3e7))": _global("__builtin__", "set") + _range(30_000_000) + b"\x85R",
    "tuple(range(1e9))": _global("__builtin__", "tuple") + _range(10**9) + b"\x85R",
    "deque(range(2**62), 0)": _global("collections", "deque") + b"(" + _range(2**62) + b"K\x00tR",
    "_reconstructor(list, list, range(1e9))": _global("copy_reg", "_reconstructor")
    + _global("__builtin__", "list") + _global("__builtin__", "list") + _range(10**9) + b"\x87R",
}


@pytest.mark.parametrize("case", sorted(CONSTRUCTOR_BOMBS))
def test_allowlisted_constructor_sizes_are_checked_before_they_run(tmp_path, case):
    src = tmp_path / "bomb.pkl"
    src.write_bytes(_record(CONSTRUCTOR_BOMBS[case]))
    assert len(src.read_bytes()) < 120
    refused(src, tmp_path, words=("budget",))
    proc = cli("identify", src)
    assert_clean(proc, "bomb.pkl")
    assert proc.returncode == 1 or "budget" in proc.stdout


def test_small_constructor_arguments_still_load(tmp_path):
    from converter import safepickle

    value = safepickle.loads(_record(_global("__builtin__", "list") + _range(10) + b"\x85R"))
    assert value == {"k": list(range(10))}
    value = safepickle.loads(_record(_global("__builtin__", "bytearray") + _long(5) + b"\x85R"))
    assert value == {"k": bytearray(5)} and type(value["k"]) is bytearray


def test_budget_can_be_raised_for_a_trusted_file(tmp_path):
    from converter import safepickle

    data = _record(_global("__builtin__", "list") + _range(20) + b"\x85R")
    with using(Budget(items=10)):
        with pytest.raises(BudgetError, match="items=10"):
            safepickle.loads(data)
    with using(Budget(items=None)):
        assert len(safepickle.loads(data)["k"]) == 20
    src = tmp_path / "big.pkl"
    src.write_bytes(data)
    out = tmp_path / "o"
    out.mkdir()
    assert cli(src, out / "a.json", env={"CONVERTER_BUDGET": "items=10"}).returncode == 1
    assert cli(src, out / "b.json", "--budget", "items=100", env={"CONVERTER_BUDGET": "items=10"}).returncode == 0
    proc = cli(src, out / "c.json", "--budget", "itemz=1")
    assert proc.returncode == 2 and "itemz" in proc.stderr


def test_budget_parsing():
    b = Budget.parse("depth=5k, bytes=2G,digits=none")
    assert (b.depth, b.bytes, b.digits) == (5 * 1024, 2 * 2**30, None)
    for bad in ("depth", "depth=x", "nope=1", "depth=-1"):
        with pytest.raises(ConverterError):
            Budget.parse(bad)


# -- hashing: deep and shared tuples, hash flooding ------------------------------------------

P61 = 2**61 - 1


def _deep_tuple_key(levels: int) -> bytes:
    return b"\x80\x02}" + b"K\x01" + b"\x85" * levels + b"K\x01s."


def _shared_tuple_key(levels: int) -> bytes:
    return b"\x80\x02}" + b"K\x01\x85" + b"2\x86" * levels + b"K\x01s."  # t = (t, t), DUP TUPLE2


def _flood(count: int, as_set: bool) -> bytes:
    """{i * (2**61 - 1): 0} (or a set of them) written opcode by opcode: building the dict
    in this process would take the quadratic time the test is about."""
    items = b"".join(_long(i * P61) + (b"" if as_set else b"K\x00") for i in range(1, count + 1))
    if as_set:
        return b"\x80\x04\x8f(" + items + b"\x90."
    return b"\x80\x02}(" + items + b"u."


HASH_BOMBS = {
    "tuple nested 10**6 deep as a dict key": lambda: _deep_tuple_key(10**6),
    "tuple nested 10**6 deep as a set member": lambda: b"\x80\x04\x8f(" + b"K\x01" + b"\x85" * 10**6 + b"\x90.",
    "tuple of shared tuples as a dict key": lambda: _shared_tuple_key(80),
    "tuple of shared tuples in a frozenset": lambda: b"\x80\x04(" + b"K\x01\x85" + b"2\x86" * 80 + b"\x91.",
    "120,000 ints sharing one hash as dict keys": lambda: _flood(120_000, False),
    "120,000 ints sharing one hash in a set": lambda: _flood(120_000, True),
    "120,000 ints sharing one hash through set()": lambda: b"\x80\x02" + _global("__builtin__", "set") + b"](" + b"".join(
        _long(i * P61) for i in range(1, 120_001)) + b"e\x85R.",
    "tuple() of tuples": lambda: b"\x80\x02" + _global("__builtin__", "tuple") + b"]K\x01\x85a\x85R.",
}


@pytest.mark.parametrize("case", sorted(HASH_BOMBS))
def test_hashing_bombs_in_a_pickle_are_refused_before_anything_hashes(tmp_path, case):
    src = tmp_path / "hash.pkl"
    src.write_bytes(HASH_BOMBS[case]())
    refused(src, tmp_path)
    assert_clean(cli("identify", src), "hash.pkl")


def test_legitimate_tuples_still_load(tmp_path):
    import pickle

    from converter import safepickle

    value = {(i, str(i)): ((i, i + 1), frozenset({(i,)})) for i in range(2000)}
    assert safepickle.loads(pickle.dumps(value, 4)) == value
    assert safepickle.loads(pickle.dumps(value, 0)) == value
    wide = tuple((i, i) for i in range(50_000))  # big, but its opcodes account for its hash work
    assert safepickle.loads(pickle.dumps({wide: 1}, 4)) == {wide: 1}
    big_ints = {i * P61 + i: i for i in range(5000)}  # big, distinct hashes
    assert safepickle.loads(pickle.dumps(big_ints, 4)) == big_ints


# -- sizes: shared bytes, big ints -------------------------------------------------------------

def test_records_sharing_one_big_bytes_object_are_refused(tmp_path):
    import pickle

    src = tmp_path / "shared.pkl"
    big = b"x" * 50_000_000
    src.write_bytes(pickle.dumps({i: big for i in range(100)}, 4))
    refused(src, tmp_path, words=("bytes=",))
    refused(src, tmp_path, "out.jsonl", words=("bytes=",))
    s = "y" * 20_000_000
    src.write_bytes(pickle.dumps([[s, s, s]] * 20, 2))
    refused(src, tmp_path, words=("bytes=",))


def test_a_big_shared_string_used_a_few_times_converts(tmp_path):
    import pickle

    src = tmp_path / "few.pkl"
    s = "y" * 1_000_000
    src.write_bytes(pickle.dumps({i: s for i in range(20)}, 4))
    out = tmp_path / "o"
    out.mkdir()
    assert cli(src, out / "few.json").returncode == 0


def test_big_ints_are_refused_past_the_digit_budget(tmp_path):
    import pickle

    src = tmp_path / "bigint.pkl"
    src.write_bytes(pickle.dumps({"k": 7 ** (1 << 22)}, 4))  # a 1.4 MiB int
    refused(src, tmp_path, words=("digits=",))
    refused(src, tmp_path, "out.sqlite", words=("digits=",))
    text = tmp_path / "bigint.json"
    text.write_text('{"k": 1' + "0" * 5_000_000 + "}")
    refused(text, tmp_path, "out.pkl", words=("digits=",))
    # read in pieces, the number is refused before all of it is read: the count says "more than"
    r = cli(text, tmp_path / "out" / "out.pkl")
    counted = re.search(r"an integer of (more than )?([\d,]+) digits", r.stderr)
    assert counted and counted[1] and 100_000 < int(counted[2].replace(",", "")) < 5_000_001, r.stderr
    exact = tmp_path / "exact.json"
    exact.write_text('{"k": 1' + "0" * 100_001 + "}")  # within one piece: the exact count
    assert "an integer of 100,002 digits, past" in cli(exact, tmp_path / "out" / "out.pkl").stderr
    lines = tmp_path / "bigint.jsonl"
    lines.write_text('{"key": 1, "value": {"$int": "1' + "0" * 5_000_000 + '"}}\n')
    refused(lines, tmp_path, "out.pkl", words=("digits=",))
    ok = tmp_path / "ok.json"
    ok.write_text('{"k": 1' + "0" * 50_000 + "}")
    out = tmp_path / "o"
    out.mkdir()
    assert cli(ok, out / "ok.pkl").returncode == 0


# -- the same in tagged JSON and JSON Lines ----------------------------------------------------

# Deeper JSON is refused the same way, but the reader parses deep nesting at about 50 us a
# level, so 10**6 levels take longer than this suite's 30 s limit (see fuzz/RESULTS.md).
DEEP_JSON = 100_000


def _deep_tuple_json(levels: int) -> str:
    return '{"$tuple": [' * levels + "1" + "]}" * levels


def _colliding_ints(count: int) -> str:
    return ", ".join(str(i * P61) for i in range(1, count + 1))


JSON_BOMBS = {
    "deep $dict key.json": lambda: '{"$dict": [[' + _deep_tuple_json(DEEP_JSON) + ", 1]]}",
    "deep $set member.json": lambda: '{"k": {"$set": [' + _deep_tuple_json(DEEP_JSON) + "]}}",
    "deep key.jsonl": lambda: '{"key": 0, "value": 0}\n{"key": ' + _deep_tuple_json(DEEP_JSON) + ', "value": 1}\n',
    "flood $set.json": lambda: '{"k": {"$set": [' + _colliding_ints(120_000) + "]}}",
    "flood $dict.json": lambda: '{"$dict": [' + ", ".join(f"[{i * P61}, 0]" for i in range(1, 120_001)) + "]}",
    "flood keys.jsonl": lambda: "".join(f'{{"key": {i * P61}, "value": 0}}\n' for i in range(1, 120_001)),
}


@pytest.mark.parametrize("case", sorted(JSON_BOMBS))
def test_hashing_bombs_in_json_are_refused_or_bounded(tmp_path, case):
    src = tmp_path / case.replace(" ", "-")
    src.write_text(JSON_BOMBS[case]())
    out = tmp_path / "out"
    out.mkdir()
    proc = assert_clean(cli(src, out / "out.pkl"), src.name, out)
    if case.startswith("flood keys"):  # distinct keys: converted, in bounded time
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 1


def test_repeated_keys_are_still_found(tmp_path):
    src = tmp_path / "rep.jsonl"
    src.write_text('{"key": [1, 2], "value": 0}\n{"key": {"$tuple": [1, 2]}, "value": 1}\n'
                   '{"key": {"$tuple": [1, 2]}, "value": 2}\n{"key": 1, "value": 3}\n{"key": 1.0, "value": 4}\n'
                   '{"key": "a", "value": 5}\n{"key": "a", "value": 6}\n')
    out = tmp_path / "o"
    out.mkdir()
    proc = cli(src, out / "o.pkl")
    assert proc.returncode == 0, proc.stderr
    assert "3 key(s)" in proc.stderr, proc.stderr


def test_verify_of_an_expansion_bomb_is_refused_not_expanded(tmp_path):
    import pickle

    inner = [0]
    for _ in range(12):  # a list of 10 references to a list of 10 references...: 10**12 items
        inner = [inner] * 10
    src = tmp_path / "bomb.pkl"
    src.write_bytes(pickle.dumps({"bomb": inner}, 4))
    proc = cli("verify", src, src)
    assert_clean(proc, "bomb", None, words=("expand",))
    assert proc.returncode == 1


# -- odd inputs: only regular files, any file name, clean messages ----------------------------

@pytest.mark.parametrize("kind", ["fifo", "dev-zero-symlink"])
@pytest.mark.parametrize("args", [(), ("--from", "jsonl")])
def test_only_regular_files_are_read(tmp_path, kind, args):
    src = tmp_path / "in.jsonl"
    if kind == "fifo":
        os.mkfifo(src)
    else:
        src.symlink_to("/dev/zero")
    refused(src, tmp_path, "out.json", *args, words=("not a regular file",))
    assert_clean(cli("identify", src), "in.jsonl")
    assert cli("identify", src).returncode == 1


def test_file_names_that_are_not_utf8_work(tmp_path):
    import sqlite3

    raw = os.fsencode(tmp_path) + b"/caf\xe9.sqlite"
    con = sqlite3.connect(raw)
    con.execute("CREATE TABLE t (key TEXT PRIMARY KEY, v INTEGER)")
    con.execute("INSERT INTO t VALUES ('a', 1)")
    con.commit()
    con.close()
    src = os.fsdecode(raw)
    out = tmp_path / "o"
    out.mkdir()
    proc = cli(src, out / "t.json")
    assert proc.returncode == 0, proc.stderr
    back = os.fsdecode(os.fsencode(out) + b"/b\xff.sqlite")
    proc = cli(out / "t.json", back)
    assert proc.returncode == 0, proc.stderr
    assert cli("identify", back).returncode == 0


def test_control_characters_in_names_are_escaped(tmp_path):
    import sqlite3

    src = tmp_path / "esc.sqlite"
    con = sqlite3.connect(src)
    con.execute('CREATE TABLE "evil\x1b[2J\x07" (a INTEGER)')
    con.commit()
    con.close()
    proc = cli("identify", src)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout and "\\x1b" in proc.stdout, proc.stdout
    bad = tmp_path / "na\x1bme.pkl"
    bad.write_bytes(b"not a pickle at all")
    proc = cli(bad, tmp_path / "x.json", "--from", "pickle")
    assert proc.returncode == 1 and "\x1b" not in proc.stderr and "\\x1b" in proc.stderr, proc.stderr


def test_a_dbm_dumb_offset_of_100000_digits_is_a_format_error(tmp_path):
    (tmp_path / "huge.dat").write_bytes(b"")
    (tmp_path / "huge.dir").write_text("'k', (" + "9" * 100_000 + ", 1)\n")
    out = tmp_path / "out"
    out.mkdir()
    proc = assert_clean(cli(tmp_path / "huge.dat", out / "o.json"), "huge.dir", out)
    assert proc.returncode == 1


def test_the_file_size_limit_is_a_one_line_error_with_nothing_left(tmp_path):
    import pickle

    src = tmp_path / "many.pkl"
    src.write_bytes(pickle.dumps({f"k{i}": "v" * 100 for i in range(50_000)}, 4))
    out = tmp_path / "out"
    out.mkdir()

    def limit():
        _limit()
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    proc = subprocess.run([sys.executable, "-m", "converter", str(src), str(out / "o.json")], capture_output=True,
                          text=True, timeout=SECONDS, preexec_fn=limit,
                          env={**os.environ, "CONVERTER_LOAD_PLUGINS": ""})
    assert_clean(proc, "o.json", out, words=("file-size limit",))
    assert proc.returncode == 1


def test_memory_exhaustion_is_a_one_line_error():
    import typer

    from converter.cli import _run

    def boom():
        raise MemoryError

    with pytest.raises(typer.Exit):
        _run(boom, False)


# -- stores whose records overlap: more bytes out than the file holds ----------------------

def _rows_sharing_a_default(path, rows: int, blob: int):
    """A SQLite table of ``rows`` rows, then a column added with a ``blob``-byte DEFAULT they all read."""
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    con.executemany("INSERT INTO t VALUES (?)", [(f"k{i}",) for i in range(rows)])
    con.commit()
    con.execute(f"ALTER TABLE t ADD COLUMN big BLOB DEFAULT x'{'00' * blob}'")
    con.commit()
    con.close()
    return path


def test_a_sqlite_column_default_shared_by_every_row_is_refused_not_expanded(tmp_path):
    """ALTER TABLE ADD COLUMN ... DEFAULT <5 MB blob>: a 10 MB file whose 2,000 rows all read the blob."""
    src = _rows_sharing_a_default(tmp_path / "amp.sqlite", 2000, 5_000_000)
    refused(src, tmp_path, "out.jsonl", words=("more than", "DEFAULT", "bytes="))
    # an ordinary DEFAULT still converts: rows may share one as long as they hold less than the budget
    small = _rows_sharing_a_default(tmp_path / "ok.sqlite", 3, 1000)
    done = cli(small, tmp_path / "ok.jsonl")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ok.jsonl").read_text().count("\n") == 3


def test_dbm_dumb_index_entries_aimed_at_one_region_are_refused_not_expanded(tmp_path):
    import dbm.dumb

    db = dbm.dumb.open(str(tmp_path / "amp"), "n")
    db[b"only"] = b"x" * 5_000_000
    db.close()
    # 300 index lines, every one pointing at the same 5 MB: 1.5 GB of values from a 5 MB file
    (tmp_path / "amp.dir").write_text("".join(f"'k{i}', (0, 5000000)\n" for i in range(300)))
    refused(tmp_path / "amp.dat", tmp_path, "out.jsonl", words=("more than", "bytes="))


def test_decimal_keys_that_share_one_hash_are_refused_before_the_dict_is_built(tmp_path):
    """Decimal(i * (2**61 - 1)) all hash to 0 (Decimal hashes are not randomised)."""
    import decimal
    import pickle

    flood = tmp_path / "flood.pkl"
    flood.write_bytes(pickle.dumps({"d": {decimal.Decimal(i * (2**61 - 1)): i for i in range(1500)}}))
    refused(flood, tmp_path, words=("hash flooding", "collisions="))
    many = tmp_path / "many.pkl"  # distinct hashes, and one value many times: fine
    many.write_bytes(pickle.dumps({"d": {decimal.Decimal(i) / 7: decimal.Decimal("1.5") for i in range(5000)}}))
    done = cli(many, tmp_path / "many.json")
    assert done.returncode == 0, done.stderr
