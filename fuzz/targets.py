"""Fuzz targets: one per reader, shared by tests/test_fuzz.py (Hypothesis, in CI) and
fuzz/run_fuzz.py (a longer campaign, coverage-guided with atheris when it is installed).

A target takes the bytes of one file, puts them where the reader looks (beside the other
files of the store, copied from a real fixture), and reads every record to the end: first
the raw records of the format's reader, then the records as ``convert`` reads them (with
codecs, e.g. the pickles inside a shelve). The contract under test: a reader may only fail
with ``converter.errors.ConverterError`` (or a subclass), whatever the bytes.

Seeds are the real fixture files made by the real software (tests/fixtures, see its README),
and for JSON, which has no fixture, files that this tool writes from those fixtures.
"""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


@dataclass
class Target:
    """``fmt``: the format read; ``member``: the file name the fuzzed bytes are written to;
    ``read``: the name given to the reader; ``companions``: fixture files copied beside it;
    ``seeds``: fixture files whose bytes start the search; ``options``: Options fields."""

    fmt: str
    member: str
    seeds: list[Path]
    read: str | None = None
    companions: list[Path] = field(default_factory=list)
    options: dict = field(default_factory=dict)

    def seed_bytes(self) -> list[bytes]:
        return [p.read_bytes() for p in self.seeds if p.is_file()]


def _f(*names):
    return [FIXTURES / n for n in names]


TARGETS: dict[str, Target] = {
    "pickle": Target("pickle", "in.pkl", _f(
        "py2/py2_proto0.pkl", "py2/py2_proto1.pkl", "py2/py2_proto2.pkl", "py2/py2_appended.pkl",
        "safepickle/py2_values_p0.pkl", "safepickle/py2_object_p0.pkl", "safepickle/py3_bytes_p2.pkl",
    ) + [ROOT / "examples" / "people.pkl"]),
    "json": Target("json", "in.json", []),  # seeds made by json_seeds()
    "jsonl": Target("jsonl", "in.jsonl", []),
    # dbm.dumb: the index (.dir) is parsed, the data file (.dat) only sliced
    "dbm.dumb": Target("dbm.dumb", "db.dir", _f("py313/dbm_dumb.dir"), read="db",
                       companions=_f("py313/dbm_dumb.dat")),
    # shelve on dbm.dumb: the values in .dat are pickles written by Python 2
    "shelve": Target("shelve", "db.dat", _f("py2/py2_dumbdbm_shelve.dat"), read="db",
                     companions=_f("py2/py2_dumbdbm_shelve.dir")),
    "dbm.sqlite3": Target("dbm.sqlite3", "in.sqlite", _f("py313/dbm_sqlite3.sqlite", "py313/shelve_sqlite3.db")),
    "sqlite": Target("sqlite", "in.sqlite", _f("py313/sqlite_people.sqlite", "py313/sqlitedict_style.sqlite")),
    "dbm.gnu": Target("dbm.gnu", "in.gdbm", _f(
        "gdbm/std.db", "gdbm/numsync.db", "gdbm/empty.db", "debian/gdbm_small.gdbm", "debian/gdbm_shelve_p2.gdbm")),
    "dbm.ndbm": Target("dbm.ndbm", "db.pag", _f("gdbm/compat.pag"), read="db", companions=_f("gdbm/compat.dir")),
    "berkeleydb": Target("berkeleydb", "in.db", _f(
        "bdb/hash.db", "bdb/btree_v8.db", "bdb/btree_be_chksum.db", "bdb/hash185.db", "bdb/hash_v5.db",
        "debian/bdb_hash.db", "debian/ndbm_small.db")),
    "berkeleydb-multi": Target("berkeleydb", "in.db", _f("bdb/multi.db"), options={"database": "alpha"}),
    "gdbm-dump": Target("gdbm-dump", "in.dump", _f("gdbm/std.dump", "gdbm/small512.bin")),
    "db_dump": Target("db_dump", "in.txt", _f("bdb/dump_print.txt", "bdb/dump_bytevalue.txt")),
    "db_dump-multi": Target("db_dump", "in.txt", _f("bdb/dump_multi.txt"), options={"database": "beta"}),
}


def json_seeds(workdir: Path) -> dict[str, list[bytes]]:
    """JSON and JSON Lines seeds: what this tool writes for fixtures with tricky values."""
    import converter

    workdir.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, list[bytes]] = {"json": [], "jsonl": []}
    sources = [FIXTURES / "py2" / "py2_proto2.pkl", FIXTURES / "safepickle" / "py2_values_p2.pkl",
               ROOT / "examples" / "people.pkl"]
    for i, src in enumerate(sources):
        for fmt in ("json", "jsonl"):
            out = workdir / f"seed{i}.{fmt}"
            if not out.exists():
                try:
                    converter.convert(src, out, to=fmt, force=True)
                except converter.ConverterError:
                    continue
            seeds[fmt].append(out.read_bytes())
    seeds["json"] += [b'{"a": [1, 2.5, "x", null, true], "b": {"$bytes": "AAE="}}', b"[[], {}, \"\\u00e9\"]"]
    seeds["jsonl"] += [b'{"key": "a", "value": 1}\n{"key": 2, "value": [1]}\n', b'[1]\n"s"\n']
    return seeds


class Hang(BaseException):
    """A target ran past its time limit (BaseException: the CLI and readers must not catch it)."""


def _alarm(signum, frame):
    raise Hang()


def run(name: str, data: bytes, workdir: Path, seconds: float = 0) -> int:
    """Read ``data`` as target ``name`` inside ``workdir`` (emptied first); return the record count.

    Raises ConverterError for bad input (the allowed outcome), Hang after ``seconds`` (0: no
    limit; needs the main thread), anything else is a bug.
    """
    from converter.codecs import decode_records
    from converter.options import Options
    from converter.registry import get_registry

    target = TARGETS[name]
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    for c in target.companions:
        shutil.copyfile(c, workdir / target.member.replace(Path(target.member).suffix, c.suffix))
    (workdir / target.member).write_bytes(data)
    path = workdir / (target.read or target.member)
    registry = get_registry()
    fmt = registry.format(target.fmt)
    if seconds:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        n = 0
        for _ in fmt.reader(path, Options(**target.options)):
            n += 1
        if fmt.kv:  # again as convert reads it: through the codecs (pickles unpickled safely)
            options = Options(**target.options)
            records = decode_records(fmt.reader(path, options), registry, options, str(path),
                                     fmt.key_codec, fmt.value_codec)
            for _ in records:
                n += 1
        return n
    finally:
        if seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


os.environ.setdefault("CONVERTER_LOAD_PLUGINS", "")
