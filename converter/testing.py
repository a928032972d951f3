"""Test helpers for converter and for plugin authors: a corpus of tricky values, a round-trip
helper that sends it through any chain of formats, and the conformance kit.

    from converter.testing import FormatTests

    class TestMyFormat(FormatTests):      # 14 checks a format plugin must pass
        format = "myformat"

    from converter.testing import TRICKY, assert_same, roundtrip

    def test_my_chain(tmp_path):
        assert_same(roundtrip(tmp_path, TRICKY, ["myformat", "json"]), TRICKY)
"""

from __future__ import annotations

import datetime as dt
import json
import math
import pickle
from collections import OrderedDict, defaultdict, deque
from decimal import Decimal
from pathlib import Path

from .options import Options
from .pipeline import convert
from .registry import get_registry

_TZ = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")

# Keys are str except where a test says otherwise; values cover everything the JSON tags name.
TRICKY: dict = {
    "str": "plain text",
    "unicode ключ 日本": "naïve ☃ 𝄞",
    "": "the empty key",
    "empty": "",
    "bytes": b"\x00\xff binary \x80",
    "empty bytes": b"",
    "bytearray": bytearray(b"ab\x00"),
    "tuple": (1, "a", (2, (3,))),
    "empty tuple": (),
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", "b"}),
    "datetime": dt.datetime(2024, 1, 2, 3, 4, 5, 678901),
    "aware datetime": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=_TZ),
    "date": dt.date(1999, 12, 31),
    "time": dt.time(23, 59, 59, 1),
    "timedelta": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "timezone": dt.timezone.utc,
    "decimal": Decimal("1.10"),
    "complex": 1 + 2j,
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "-0.0": -0.0,
    "float": 1.5,
    "pi": 3.141592653589793,  # every digit of a double: a writer that rounds (f"{v:.6g}") changes it
    "tiny float": 5e-324,
    "big int": 2**100,
    "big negative": -(2**64) - 1,
    "2**53": 2**53,
    "int": 42,
    "bool": True,
    "none": None,
    "int keys": {1: "a", 2: "b"},
    "tuple keys": {(1, 2): "x", None: "none key"},
    "nested": {"a": [{"b": {"c": [1, 2, {"d": None}]}}], "e": []},
    "empty dict": {},
    "empty list": [],
    "looks like a tag": {"$bytes": "not a tag"},
    "ordered": OrderedDict([("z", 1), ("a", 2)]),
    "defaultdict": defaultdict(list, {"k": [1]}),
    "deque": deque([1, "two"]),
    "flat record": {"key": "flat record", "name": "Omkar Pathak", "age": 21, "pay": 40000},
}

# Record keys that are not str: each must come back as itself (type and value) or be refused.
OTHER_KEYS: tuple = (7, -(2**70), 2.5, b"bytes \xff key", (1, "a"), True, None)

# A binary key: dbm stores and pickle hold it; shelve (str keys) must refuse it loudly.
TRICKY_WITH_BINARY_KEY: dict = {**TRICKY, b"binary \xff key": "value under a binary key"}


def assert_same(got, expected, path="value"):
    """Deep equality that also compares types (1 != 1.0 != True), NaN, and -0.0."""
    assert type(got) is type(expected), f"{path}: {type(got).__name__} {got!r} != {type(expected).__name__} {expected!r}"
    if isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(got), f"{path}: {got!r} != nan"
        else:
            assert got == expected and math.copysign(1, got) == math.copysign(1, expected), f"{path}: {got!r} != {expected!r}"
    elif isinstance(expected, dict):
        assert list(map(_keyrepr, got)) == list(map(_keyrepr, expected)) or set(map(_keyrepr, got)) == set(
            map(_keyrepr, expected)), f"{path}: keys {list(got)} != {list(expected)}"
        if isinstance(expected, defaultdict):
            assert got.default_factory is expected.default_factory, f"{path}: default_factory differs"
        for k in expected:
            assert_same(got[k], expected[k], f"{path}[{k!r}]")
    elif isinstance(expected, (list, tuple, deque)):
        assert len(got) == len(expected), f"{path}: length {len(got)} != {len(expected)}"
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(expected, dt.datetime):
        assert got == expected and got.tzinfo == expected.tzinfo and got.fold == expected.fold, f"{path}: {got!r} != {expected!r}"
    else:
        assert got == expected, f"{path}: {got!r} != {expected!r}"
        if isinstance(expected, Decimal):
            assert str(got) == str(expected), f"{path}: {got} != {expected}"


def _keyrepr(k):
    return (type(k).__name__, repr(k))


def _suffix(fmt: str) -> str:
    return {"dbm.dumb": "", "shelve": "", "dbm.gnu": ".gdbm", "dbm.ndbm": ""}.get(fmt, "")


def roundtrip(tmp_path: Path, data: dict, formats: list[str], registry=None, **option_fields) -> dict:
    """Write ``data`` as a pickle, convert it through every format in ``formats`` in turn, then
    back to a pickle, and return what that pickle holds. Each step is a real conversion."""
    registry = registry or get_registry()
    tmp_path = Path(tmp_path)
    src = tmp_path / "start.pkl"
    with open(src, "wb") as f:
        pickle.dump(data, f, protocol=4)
    previous, previous_fmt = src, "pickle"
    for i, fmt in enumerate(formats):
        out = tmp_path / f"step{i}-{fmt.replace('.', '_')}{_suffix(fmt)}"
        convert(previous, out, from_=previous_fmt, to=fmt, options=Options(**option_fields), registry=registry)
        previous, previous_fmt = out, fmt
    final = tmp_path / "end.pkl"
    convert(previous, final, from_=previous_fmt, to="pickle", options=Options(**option_fields), registry=registry)
    with open(final, "rb") as f:
        return pickle.load(f)


# --- the conformance kit -------------------------------------------------------------------
#
#     # tests/test_myformat.py of a plugin distribution
#     from converter.testing import FormatTests
#
#     class TestMyFormat(FormatTests):
#         format = "myformat"
#
# pytest collects the inherited checks. Each builds its inputs in pytest's tmp_path, so the class
# can run twice in one directory, and uses the installed registry (built-ins and plugins alike).

TESTDATA = Path(__file__).parent / "testdata"

# each built-in fixture and the format that owns it
FIXTURES = {
    "people.pkl": "pickle", "people.json": "json", "people.jsonl": "jsonl", "people.sqlite": "sqlite",
    "small.gdbm": "dbm.gnu", "hash.bdb": "berkeleydb", "dbm.sqlite3": "dbm.sqlite3", "dumb.dir": "dbm.dumb",
}


def _refused(exc: BaseException) -> bool:
    from .errors import UnsupportedValueError

    return isinstance(exc, UnsupportedValueError)


class FormatTests:
    """Checks a format plugin passes: subclass with ``format = "NAME"`` (see above).

    A format may refuse a value it cannot hold (``UnsupportedValueError``); it must never
    change one silently. Attributes a subclass may set: ``corpus`` (the values tried, default
    ``TRICKY``), ``registry`` (default: the installed one), ``sample`` (records every format
    holds, default ``{"a": "text", "b": "more"}``), ``options`` (Options fields for writing,
    e.g. ``{"layout": "kv"}``), ``overlaps`` (built-in formats whose files this one's sniff may
    also match by design, as JSON's matches a JSON Lines file: detection ranks them).
    """

    format: str = ""
    corpus: dict = TRICKY
    registry = None
    sample: dict = {"a": "text", "b": "more"}
    options: dict = {}
    overlaps: tuple = ()

    # -- helpers ---------------------------------------------------------------------------

    def _registry(self):
        return self.registry or get_registry()

    def _fmt(self):
        assert self.format, f"{type(self).__name__} must set format = 'NAME'"
        return self._registry().format(self.format)

    def _name(self, tmp_path, stem="out"):
        fmt = self._fmt()
        return Path(tmp_path) / (stem + (fmt.extensions[0] if fmt.extensions else _suffix(fmt.name) or ".data"))

    def _write(self, tmp_path, data, stem="out"):
        """``data`` written in this format (from a pickle, through the real pipeline)."""
        import pytest

        fmt = self._fmt()
        if fmt.writer is None:
            pytest.skip(f"{fmt.name} has no writer")
        src = Path(tmp_path) / f"source-of-{stem}.pkl"
        src.write_bytes(pickle.dumps(data, protocol=4))
        out = self._name(tmp_path, stem)
        try:
            convert(src, out, to=fmt.name, registry=self._registry(), force=True, **self.options)
        except Exception as exc:  # noqa: BLE001
            from .errors import ConverterError

            if isinstance(exc, ConverterError) and "needs Python's" in str(exc):
                pytest.skip(str(exc))  # a writer that needs a module this interpreter lacks
            raise
        return out

    def _reading(self):
        """The format, or the test skipped when it has no reader."""
        fmt = self._fmt()
        if fmt.reader is None:
            import pytest

            pytest.skip(f"{fmt.name} has no reader")
        return fmt

    def _clean_answer(self, path, what: str) -> None:
        """Reading ``path`` gives records or a ConverterError (FormatError...), nothing else."""
        from .errors import ConverterError

        try:
            self._read(path)
        except ConverterError:
            pass  # a clean answer
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"{what}: {type(exc).__name__}: {exc} (raise FormatError)") from exc

    def _read(self, path) -> list:
        from .pipeline import read_records

        return list(read_records(path, from_=self._fmt().name, registry=self._registry()))

    # -- the checks ------------------------------------------------------------------------

    def test_is_registered_with_a_reader_or_a_writer(self):
        fmt = self._fmt()
        assert fmt.reader is not None or fmt.writer is not None, f"{fmt.name} has neither a reader nor a writer"

    def test_each_tricky_value_round_trips_or_is_refused_cleanly(self, tmp_path):
        self._reading()
        for i, (key, value) in enumerate(self.corpus.items()):
            where = Path(tmp_path) / f"value{i}"
            where.mkdir()
            try:
                out = self._write(where, {key: value})
            except Exception as exc:  # noqa: BLE001
                assert _refused(exc), f"{key!r}: {type(exc).__name__}: {exc} (refuse with UnsupportedValueError)"
                assert not [p for p in where.iterdir() if p.name.startswith("out")], f"{key!r}: refused but left output"
                continue
            got = dict(self._read(out))
            assert_same(got, {key: value}, f"{self.format}[{key!r}]")

    def test_the_accepted_values_round_trip_together(self, tmp_path):
        self._reading()
        accepted = {}
        for i, (key, value) in enumerate(self.corpus.items()):
            where = Path(tmp_path) / f"probe{i}"
            where.mkdir()
            try:
                self._write(where, {key: value})
            except Exception:  # noqa: BLE001 - refused: checked by the test above
                continue
            accepted[key] = value
        out = self._write(tmp_path, accepted)
        assert_same(dict(self._read(out)), accepted, self.format)

    def test_records_are_key_value_pairs(self, tmp_path):
        self._reading()
        records = self._read(self._write(tmp_path, self.sample))
        assert records and all(type(r) is tuple and len(r) == 2 for r in records), \
            f"the reader gave {records!r}, not (key, value) tuples"

    def test_record_keys_of_other_types_round_trip_or_are_refused(self, tmp_path):
        """An int, bytes, tuple ... key comes back as itself, or the writer refuses it: a key
        that comes back as its str() (or a str as bytes) is a changed record."""
        self._reading()
        for i, key in enumerate(OTHER_KEYS):
            where = Path(tmp_path) / f"key{i}"
            where.mkdir()
            try:
                out = self._write(where, {key: "value"})
            except Exception as exc:  # noqa: BLE001
                assert _refused(exc), f"key {key!r}: {type(exc).__name__}: {exc} (refuse with UnsupportedValueError)"
                continue
            got = self._read(out)
            assert len(got) == 1, f"key {key!r}: {len(got)} records read back, not 1: {got!r}"
            assert_same(got[0][0], key, f"{self.format} key {key!r}")
            assert_same(got[0][1], "value", f"{self.format}[{key!r}]")

    def test_a_repeated_key_follows_the_formats_duplicates_rule(self, tmp_path):
        """Records with a key met twice, through the real pipeline: "override", the later record
        wins (the first is never what is read back); "keep"/"pairs", every record, in order;
        "error", a clean refusal that leaves nothing."""
        from .errors import ConverterError

        fmt = self._reading()
        if fmt.writer is None:
            import pytest

            pytest.skip(f"{fmt.name} has no writer")
        records = [("k", "first"), ("other", "middle"), ("k", "second")]
        src = Path(tmp_path) / "repeated.jsonl"
        with open(src, "w", encoding="utf-8") as f:
            for key, value in records:
                f.write(json.dumps({"key": key, "value": value}) + "\n")
        out = self._name(tmp_path)
        try:
            convert(src, out, to=fmt.name, registry=self._registry(), **self.options)
        except ConverterError as exc:
            if "needs Python's" in str(exc):
                import pytest

                pytest.skip(str(exc))  # a writer that needs a module this interpreter lacks
            assert fmt.duplicates == "error" or _refused(exc), \
                f"{type(exc).__name__}: {exc} (duplicates={fmt.duplicates!r})"
            assert not out.exists(), "refused but left output"
            return
        got = self._read(out)
        if fmt.duplicates in ("keep", "pairs"):
            assert got == records, f"duplicates={fmt.duplicates!r}: wrote {records!r}, read back {got!r}"
        else:
            assert dict(got) == {"k": "second", "other": "middle"}, \
                f"duplicates={fmt.duplicates!r} (the later record wins): wrote {records!r}, read back {got!r}"

    def test_describe_of_its_output_is_a_dict(self, tmp_path):
        fmt = self._reading()
        if fmt.describe is None:
            import pytest

            pytest.skip(f"{fmt.name} has no describe")
        out = self._write(tmp_path, self.sample)
        describe = getattr(fmt.describe, "__wrapped__", fmt.describe)  # the plugin's own, unguarded
        details = describe(out, Options())
        assert isinstance(details, dict), f"describe returned {type(details).__name__}, not a dict"

    def test_its_output_is_detected_by_content(self, tmp_path):
        from .detect import detect_input

        fmt = self._fmt()
        if fmt.sniff is None or fmt.reader is None:
            import pytest

            pytest.skip(f"{fmt.name} is detected by name only")
        out = self._write(tmp_path, self.sample)
        if len(fmt.parts(out)) == 1:  # a single file loses its extension; a multi-file store keeps its names
            plain = out.with_name("no-extension-here")
            out.rename(plain)
            out = plain
        found, reason = detect_input(out, self._registry())
        assert found.name == fmt.name, f"detected as {found.name} ({reason})"

    def test_its_output_is_detected_by_extension(self, tmp_path):
        from .detect import detect_output

        fmt = self._fmt()
        if not fmt.extensions or fmt.writer is None:
            import pytest

            pytest.skip(f"{fmt.name} has no extension of its own")
        found, reason = detect_output(self._name(tmp_path), self._registry())
        assert found.name == fmt.name, f"an output named {self._name(tmp_path).name} is {found.name} ({reason})"

    def test_its_sniff_never_claims_the_builtin_formats_files(self):
        from .detect import HEAD_SIZE

        fmt = self._fmt()
        if fmt.sniff is None:
            import pytest

            pytest.skip(f"{fmt.name} has no sniff")
        for name, owner in FIXTURES.items():
            if owner == fmt.name or owner in self.overlaps:
                continue
            path = TESTDATA / name
            head = path.read_bytes()[:HEAD_SIZE]
            assert not fmt.sniff(head, path), f"{fmt.name}'s sniff claims {name}, a {owner} file"

    def test_truncated_input_is_a_format_error(self, tmp_path):
        self._reading()
        out = self._write(tmp_path, {f"key{i}": f"value {i}" for i in range(50)})
        data = out.read_bytes() if out.is_file() else b""
        for cut in sorted({1, len(data) // 3, len(data) // 2, len(data) - 1} - {0}):
            if cut >= len(data):
                continue
            damaged = Path(tmp_path) / f"cut{cut}{out.suffix}"
            damaged.write_bytes(data[:cut])
            self._clean_answer(damaged, f"cut at {cut}")

    def test_garbage_input_is_a_format_error(self, tmp_path):
        import random

        fmt = self._reading()
        rng = random.Random(self.format)
        for i in range(5):
            path = Path(tmp_path) / f"garbage{i}{fmt.extensions[0] if fmt.extensions else ''}"
            path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
            self._clean_answer(path, f"garbage #{i}")

    def test_empty_input(self, tmp_path):
        from .errors import ConverterError

        fmt = self._reading()
        path = Path(tmp_path) / f"empty{fmt.extensions[0] if fmt.extensions else ''}"
        path.write_bytes(b"")
        try:
            got = self._read(path)
        except ConverterError:
            return  # a clean refusal
        assert got == [], f"an empty file read as {got!r}: no records, or a FormatError"

    def test_an_empty_store_round_trips(self, tmp_path):
        self._reading()
        got = self._read(self._write(tmp_path, {}))
        assert got == [], f"an empty store read back as {got!r}"

    def test_stdin_and_stdout_when_it_streams(self, tmp_path):
        import os
        import subprocess
        import sys

        fmt = self._fmt()
        if not fmt.stream or fmt.reader is None or fmt.writer is None:
            import pytest

            pytest.skip(f"{fmt.name} does not stream")
        src = Path(tmp_path) / "in.pkl"
        src.write_bytes(pickle.dumps(self.sample))
        env = dict(os.environ)
        env.pop("CONVERTER_LOAD_PLUGINS", None) if not fmt.builtin else None
        run = [sys.executable, "-m", "converter"]
        written = subprocess.run([*run, str(src), "-", "--to", fmt.name], capture_output=True, env=env, timeout=60)
        assert written.returncode == 0, written.stderr
        back = Path(tmp_path) / "back.pkl"
        read = subprocess.run([*run, "-", str(back), "--from", fmt.name], input=written.stdout,
                              capture_output=True, env=env, timeout=60)
        assert read.returncode == 0, read.stderr
        assert_same(pickle.loads(back.read_bytes()), self.sample)

    def test_a_failing_conversion_leaves_nothing(self, tmp_path):
        from .errors import ConverterError, FormatError
        from .options import Options
        from .pipeline import _write_atomically

        fmt = self._fmt()
        if fmt.writer is None:
            import pytest

            pytest.skip(f"{fmt.name} has no writer")

        def records():  # a key/value store's writer gets stored bytes, others values
            yield (b"a", b"text") if fmt.kv else ("a", "text")
            raise FormatError("the source broke")

        out = self._name(tmp_path)
        try:
            _write_atomically(fmt, out, records(), Options(**self.options))
        except FormatError as exc:
            if "the source broke" not in str(exc):
                raise
        except ConverterError as exc:
            if "needs Python's" not in str(exc):
                raise
            import pytest

            pytest.skip(str(exc))  # a writer that needs a module this interpreter lacks
        else:
            raise AssertionError("the writer swallowed the source's error")
        assert list(Path(tmp_path).iterdir()) == [], list(Path(tmp_path).iterdir())

    def test_runs_twice_in_one_directory(self, tmp_path):
        self._reading()
        for run in (1, 2):
            got = dict(self._read(self._write(tmp_path, self.sample)))
            assert got == self.sample, f"run {run} in one directory: wrote {self.sample!r}, read back {got!r}"


class CodecTests:
    """Checks a codec plugin passes: subclass with ``codec = "NAME"``."""

    codec: str = ""
    corpus: dict = TRICKY
    registry = None

    def _codec(self):
        assert self.codec, f"{type(self).__name__} must set codec = 'NAME'"
        return (self.registry or get_registry()).codec(self.codec)

    def test_each_tricky_value_round_trips_or_is_refused_cleanly(self):
        codec, options = self._codec(), Options()
        for key, value in self.corpus.items():
            if codec.accepts is not None and not codec.accepts(value):
                continue
            try:
                data = codec.encode(value, options)
            except Exception as exc:  # noqa: BLE001
                assert _refused(exc), f"{key!r}: {type(exc).__name__}: {exc} (refuse with UnsupportedValueError)"
                continue
            assert isinstance(data, bytes), f"{key!r}: encode gave {type(data).__name__}, not bytes"
            assert_same(codec.decode(data, options, "test"), value, f"{self.codec}[{key!r}]")
            if codec.sniff is not None and codec.sniff_share >= 1.0:
                assert codec.sniff(data), f"{key!r}: sniff does not recognise the codec's own bytes"

    def test_garbage_is_a_format_error(self):
        import random

        from .errors import ConverterError

        codec, options, rng = self._codec(), Options(), random.Random(self.codec)
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
            try:
                codec.decode(data, options, "garbage")
            except ConverterError:
                pass
            except Exception as exc:  # noqa: BLE001
                raise AssertionError(f"{type(exc).__name__}: {exc} (raise FormatError)") from exc
