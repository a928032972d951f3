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
