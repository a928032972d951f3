"""The conformance kit (converter.testing) on the built-in formats and codecs, which must pass
it, and on a lossy format, which it must fail."""

import pytest

from converter import Format, hookimpl
from converter.registry import Registry, make_plugin_manager
from converter.testing import CodecTests, FormatTests


class TestPickle(FormatTests):
    format = "pickle"


class TestJson(FormatTests):
    format = "json"
    overlaps = ("jsonl",)  # a JSON Lines file starts like a JSON document; detection ranks jsonl first


class TestJsonLines(FormatTests):
    format = "jsonl"


class TestSqlite(FormatTests):
    format = "sqlite"
    options = {"layout": "kv"}  # the table layout's reported changes (a key field added) are not exact
    overlaps = ("dbm.sqlite3",)  # both are SQLite files; dbm.sqlite3 ranks first by its Dict table


class TestDbmDumb(FormatTests):
    format = "dbm.dumb"


class TestDbmSqlite3(FormatTests):
    format = "dbm.sqlite3"


class TestGdbmDump(FormatTests):
    format = "gdbm-dump"


class TestDbDump(FormatTests):
    format = "db_dump"


class TestDbmGnu(FormatTests):  # its writer needs dbm.gnu: those checks skip where it is missing
    format = "dbm.gnu"


@pytest.mark.parametrize("name", ["raw", "utf8", "utf8-or-raw", "pickle", "json"])
def test_builtin_codecs_pass_the_codec_kit(name):
    kit = type("Kit", (CodecTests,), {"codec": name})()
    kit.test_each_tricky_value_round_trips_or_is_refused_cleanly()
    kit.test_garbage_is_a_format_error()


# -- a format that changes values (str() of each) must fail the kit -----------------------------

def _write_str(path, records, options):
    with open(path, "w") as f:
        for k, v in records:
            f.write(f"{k}\t{v}\n")


def _read_str(path, options):
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            yield k, v


class _Lossy:
    @hookimpl
    def register_formats(self, register):
        register(Format(name="lossy-text", extensions=(".lossy",), reader=_read_str, writer=_write_str))


def test_the_kit_fails_a_format_that_changes_values(tmp_path):
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_Lossy())
    kit = type("Kit", (FormatTests,), {"format": "lossy-text", "registry": Registry(pm)})()
    with pytest.raises(AssertionError, match="lossy-text"):
        kit.test_each_tricky_value_round_trips_or_is_refused_cleanly(tmp_path)
    (tmp_path / "ok").mkdir()
    kit.test_records_are_key_value_pairs(tmp_path / "ok")  # what it keeps right still passes


# -- subtler losses the kit must catch: rounded floats, keys turned to text, a repeat resolved
#    the wrong way. Each writer keeps everything else exactly (pickled values). -----------------

def _read_pickled(path, options):
    import pickle

    with open(path, "rb") as f:
        yield from pickle.load(f)


def _writer(change):
    def write(path, records, options):
        import pickle

        with open(path, "wb") as f:
            pickle.dump(change(list(records)), f)
    return write


def _round_floats(records):
    return [(k, float(f"{v:.6g}") if type(v) is float else v) for k, v in records]


def _keys_as_text(records):
    return [(str(k) if k is not None else k, v) for k, v in records]


def _first_of_each_key(records):
    seen = {}
    for k, v in records:
        seen.setdefault(k, v)
    return sorted(seen.items(), key=lambda kv: str(kv[0]))


class _Subtle:
    @hookimpl
    def register_formats(self, register):
        for name, change in (("rounds", _round_floats), ("textkeys", _keys_as_text), ("keepsfirst", _first_of_each_key)):
            register(Format(name=name, extensions=(f".{name}",), reader=_read_pickled, writer=_writer(change)))


@pytest.mark.parametrize("fmt, check, says", [
    ("rounds", "test_each_tricky_value_round_trips_or_is_refused_cleanly", "3.14159"),
    ("textkeys", "test_record_keys_of_other_types_round_trip_or_are_refused", "key 7"),
    ("keepsfirst", "test_a_repeated_key_follows_the_formats_duplicates_rule", "the later record wins"),
])
def test_the_kit_fails_subtler_losses(tmp_path, fmt, check, says):
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_Subtle())
    kit = type("Kit", (FormatTests,), {"format": fmt, "registry": Registry(pm)})()
    with pytest.raises(AssertionError, match=says):
        getattr(kit, check)(tmp_path)
    (tmp_path / "ok").mkdir()
    kit.test_runs_twice_in_one_directory(tmp_path / "ok")  # what it keeps right still passes
