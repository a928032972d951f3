"""Plugin isolation, no hijacking, the record contract and `convert plugins`, with real throwaway
plugin distributions (a dist-info with entry points on PYTHONPATH) and the real command line."""

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PLUGINS = {
    # distribution name: (module source, entry-point name)
    "conv-broken-import": ("import no_such_module_anywhere\n", "brokenimport"),
    "conv-raises": ("""
        from converter import hookimpl
        @hookimpl
        def register_formats(register):
            raise RuntimeError("boom in the hook")
    """, "raises"),
    "conv-misspelled": ("""
        from converter import hookimpl
        @hookimpl
        def register_format(register):
            pass
    """, "misspelled"),
    "conv-badarg": ("""
        from converter import hookimpl
        @hookimpl
        def register_formats(regster):
            pass
    """, "badarg"),
    "conv-clash": ("""
        from converter import Format, hookimpl
        @hookimpl
        def register_formats(register):
            register(Format(name="json", reader=lambda p, o: iter(())))
    """, "clash"),
    "conv-hijack": ("""
        from converter import Format, hookimpl
        def write(path, records, options):
            with open(path, "wb") as f:
                f.write(b"HIJACKED")
        @hookimpl
        def register_formats(register):
            register(Format(name="ajson", extensions=(".json",), writer=write))
            register(Format(name="claimall", sniff=lambda head, path: "mine, all mine", priority=1000,
                            reader=lambda p, o: iter([("stolen", 1)])))
    """, "hijack"),
    "conv-codec": ("""
        from converter import Codec, hookimpl
        @hookimpl
        def register_codecs(register):
            register(Codec("grabby", decode=lambda d, o, w: d, encode=lambda v, o: b"GRABBED",
                           sniff=lambda d: True, accepts=lambda v: True, order=99))
    """, "codec"),
    "conv-badreader": ("""
        from converter import Format, hookimpl
        def read(path, options):
            yield {"key": "a", "value": 1}
        @hookimpl
        def register_formats(register):
            register(Format(name="badreader", extensions=(".bad",), reader=read))
    """, "badreader"),
    "conv-future": ("""
        from converter import Format, hookimpl
        CONVERTER_PLUGIN_API = 99
        @hookimpl
        def register_formats(register):
            register(Format(name="future", reader=lambda p, o: iter(())))
    """, "future"),
    "conv-lazywriter": ("""
        from converter import Format, hookimpl
        def write(path, records, options):
            with open(path, "wb") as f:
                f.write(b"only the first: %r" % (next(iter(records)),))
        @hookimpl
        def register_formats(register):
            register(Format(name="lazywriter", extensions=(".lazy",), writer=write))
    """, "lazywriter"),
    # the plugins below misbehave in every way the guard (converter/guard.py) must contain
    "conv-exits": ("""
        from converter import hookimpl
        @hookimpl
        def register_formats(register):
            raise SystemExit(5)
    """, "exits"),
    "conv-loud": ("""
        print("loud prints at import")
        from converter import Format, hookimpl
        def printer(path, options):
            print("the reader prints")
            yield ("a", 1)
        @hookimpl
        def register_formats(register):
            register(Format(name="printer", extensions=(".printer",), reader=printer, stream=True))
    """, "loud"),
    "conv-zoo": ("""
        from converter import Codec, Format, hookimpl
        def ok(path, options):
            yield ("a", 1)
            yield ("b", 2)
        def genexit(path, options):
            yield ("a", 1)
            raise GeneratorExit
        def listpair(path, options):
            yield ["a", 1]
        def partial(path, records, options):
            next(iter(records))
            open(path, "w").write("one")
        def wraise(path, records, options):
            for r in records:
                pass
            raise ValueError("writer blew up")
        def wexit(path, records, options):
            raise SystemExit(4)
        def sniff(head, path):
            if head.startswith(b"BOOM"):
                raise ValueError("sniff exploded")
        def draise(path, options):
            raise RuntimeError("describe blew up")
        def decode(data, options, what):
            raise KeyError("decode boom")
        @hookimpl
        def register_formats(register):
            register(Format(name="genexit", extensions=(".genexit",), reader=genexit))
            register(Format(name="listpair", extensions=(".listpair",), reader=listpair))
            register(Format(name="partial", extensions=(".partial",), writer=partial))
            register(Format(name="wraise", extensions=(".wraise",), writer=wraise))
            register(Format(name="wexit", extensions=(".wexit",), writer=wexit))
            register(Format(name="boom", extensions=(".boom",), reader=ok, sniff=sniff))
            register(Format(name="draise", extensions=(".draise",), reader=ok, describe=draise))
            register(Format(name="dlist", extensions=(".dlist",), reader=ok, describe=lambda p, o: ["x"]))
        @hookimpl
        def register_codecs(register):
            register(Codec("strcodec", decode=lambda d, o, w: d, encode=lambda v, o: "a str"))
            register(Codec("nonecodec", decode=lambda d, o, w: d, encode=lambda v, o: None))
            register(Codec("keyerr", decode=decode, encode=lambda v, o: b"x"))
    """, "zoo"),
    "conv-apistr": ("""
        from converter import Format, hookimpl
        CONVERTER_PLUGIN_API = "1"
        @hookimpl
        def register_formats(register):
            register(Format(name="apistr", reader=lambda p, o: iter(())))
    """, "apistr"),
    "conv-nocodec": ("""
        from converter import Format, hookimpl
        @hookimpl
        def register_formats(register):
            register(Format(name="nocodec", kv=True, value_codec="nosuchcodec", reader=lambda p, o: iter(())))
    """, "nocodec"),
    "conv-replaces": ("""
        from converter import Format, hookimpl
        @hookimpl
        def register_formats(register):
            register(Format(name="gdbm-dump", replaces=True, reader=lambda p, o: iter([("r", 1)]),
                            sniff=lambda head, path: "REPL magic" if head.startswith(b"REPL") else None))
    """, "replaces"),
}


def make_site(site: Path, plugins: dict) -> Path:
    """Each plugin as an installed distribution (a module and its dist-info) in ``site``."""
    for dist, (source, ep) in plugins.items():
        module = dist.replace("-", "_")
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{module}-2.5.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 2.5\n")
        (info / "entry_points.txt").write_text(f"[converter]\n{ep} = {module}\n")
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    return make_site(site, PLUGINS)


def cli(site, *args, cwd, **env):
    e = {k: v for k, v in os.environ.items() if k not in ("CONVERTER_LOAD_PLUGINS", "CONVERTER_PLUGINS_STRICT")}
    e["PYTHONPATH"] = str(site)
    e.update(env)
    return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True,
                          env=e, cwd=cwd, timeout=60)


def test_every_broken_plugin_is_one_warning_and_builtins_still_convert(site, tmp_path):
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"a": 1, "b": [1, 2]}))
    r = cli(site, "x.pkl", "x.json", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1, "b": [1, 2]}  # not HIJACKED
    warnings = [l for l in r.stderr.splitlines() if l.startswith("convert: warning:")]
    for dist, what in [("conv-broken-import", "failed to import: ModuleNotFoundError"),
                       ("conv-raises", "failed in register_formats: RuntimeError: boom"),
                       ("conv-misspelled", "no such hook"), ("conv-badarg", "cannot be registered"),
                       ("conv-clash", "already the name of a format of plugin"),
                       ("conv-future", "needs plugin API 99, and this converter-toolkit provides 1"),
                       ("conv-exits", "failed in register_formats: SystemExit: 5"),
                       ("conv-apistr", "declares CONVERTER_PLUGIN_API = '1', a str; it must be an int"),
                       ("conv-nocodec", "format 'nocodec' has value_codec='nosuchcodec', which no plugin registered")]:
        mine = [w for w in warnings if f"({dist} 2.5)" in w]
        assert len(mine) == 1 and what in mine[0] and f"CONVERTER_DISABLE_PLUGINS={dist}" in mine[0], warnings
    assert "Traceback" not in r.stderr


def test_no_hijack_by_extension_sniff_or_codec(site, tmp_path):
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"k": "text"}))
    r = cli(site, "x.pkl", "out.json", "-q", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "out.json").read_text().startswith("{")
    r = cli(site, "identify", "x.pkl", cwd=tmp_path)
    assert r.stdout.startswith("x.pkl: pickle"), r.stdout
    r = cli(site, "x.pkl", "out", "--to", "dbm.dumb", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"GRABBED" not in (tmp_path / "out.dat").read_bytes()
    r = cli(site, "x.pkl", "out2", "--to", "dbm.dumb", "--value-codec", "grabby", "-q", cwd=tmp_path)
    assert r.returncode == 0 and b"GRABBED" in (tmp_path / "out2.dat").read_bytes()  # asked for by name


def test_a_reader_that_breaks_the_record_contract_is_refused_naming_the_plugin(site, tmp_path):
    (tmp_path / "x.bad").write_text("whatever")
    r = cli(site, "x.bad", "x.jsonl", "--from", "badreader", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    err = [l for l in r.stderr.splitlines() if not l.startswith("convert: warning:") and "prints at import" not in l]
    assert len(err) == 1 and "badreader" in err[0] and "conv-badreader" in err[0] and "(key, value) pair" in err[0]
    assert not (tmp_path / "x.jsonl").exists()


def test_convert_plugins_json_field_by_field(site, tmp_path):
    r = cli(site, "plugins", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["converter.plugins.pickle"] == {
        "name": "converter.plugins.pickle", "distribution": "converter-toolkit",
        "version": rows["converter.plugins.pickle"]["version"], "entry_point": "converter.plugins.pickle",
        "builtin": True, "status": "loaded", "error": "", "formats": ["pickle"], "codecs": [], "conflicts": []}
    assert rows["hijack"]["distribution"] == "conv-hijack" and rows["hijack"]["version"] == "2.5"
    assert rows["hijack"]["entry_point"] == "conv_hijack" and rows["hijack"]["status"] == "loaded"
    assert rows["hijack"]["formats"] == ["ajson", "claimall"] and not rows["hijack"]["builtin"]
    assert rows["codec"]["codecs"] == ["grabby"]
    assert rows["brokenimport"]["status"] == "failed" and "ModuleNotFoundError" in rows["brokenimport"]["error"]
    assert rows["clash"]["status"] == "failed" and rows["clash"]["formats"] == []


def test_disable_by_distribution_strict_mode_and_unknown_names(site, tmp_path):
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"a": 1}))
    r = cli(site, "plugins", "--json", cwd=tmp_path, CONVERTER_DISABLE_PLUGINS="conv-broken-import,nonesuch")
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["brokenimport"]["status"] == "disabled"
    assert "no installed plugin is called 'nonesuch'" in r.stderr
    r = cli(site, "x.pkl", "x.json", "-q", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="hijack")
    assert r.returncode == 0 and "warning" not in r.stderr  # only that one loaded
    r = cli(site, "x.pkl", "y.json", "-q", cwd=tmp_path, CONVERTER_PLUGINS_STRICT="1")
    assert r.returncode == 1 and "conv-" in r.stderr and not (tmp_path / "y.json").exists()


def test_a_writer_that_returns_before_taking_every_record_is_an_error(site, tmp_path):
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({f"k{i}": i for i in range(5000)}))
    r = cli(site, "x.pkl", "x.lazy", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "lazywriter writer of plugin 'lazywriter' (conv-lazywriter)" in r.stderr and "nothing was written" in r.stderr
    assert "(1 taken)" in r.stderr  # records counted exactly, not by the batch of 1,000
    assert not (tmp_path / "x.lazy").exists()


def test_help_lists_the_live_registry_plugin_formats_and_codecs_included(site, tmp_path):
    text = " ".join(cli(site, "convert", "--help", cwd=tmp_path).stdout.split())
    assert "grabby" in text and "ajson" in text and "utf8-or-raw" in text and "dbm.sqlite3" in text


def test_every_conflict_with_a_built_in_is_visible_in_plugins_and_identify(site, tmp_path):
    rows = {r["name"]: r for r in json.loads(cli(site, "plugins", "--json", cwd=tmp_path).stdout)}
    assert rows["hijack"]["conflicts"] == ["extension .json: the built-in json keeps it"]
    assert rows["codec"]["conflicts"] == [] and rows["converter.plugins.json"]["conflicts"] == []
    assert "conflicts: extension .json: the built-in json keeps it" in cli(site, "plugins", cwd=tmp_path).stdout
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"a": 1}))
    out = cli(site, "identify", "x.pkl", cwd=tmp_path).stdout
    assert "also matches: claimall (mine, all mine); plugin 'hijack' loses to the built-in pickle" in out


def _errors(r):
    return [l for l in r.stderr.splitlines() if not l.startswith("convert: warning:")]


def test_a_plugin_cannot_exit_the_process_or_print_a_traceback(site, tmp_path):
    r = cli(site, "plugins", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-exits")
    assert r.returncode == 0 and "exits  [conv-exits 2.5]  failed" in r.stdout, (r.returncode, r.stderr)
    (tmp_path / "in.genexit").write_text("")
    (tmp_path / "two.json").write_text('{"a": 1, "b": 2}')
    zoo = {"CONVERTER_LOAD_PLUGINS": "conv-zoo"}
    for args, line in [
        (("in.genexit", "o.json"), "in.genexit: the genexit reader of plugin 'zoo' (conv-zoo) failed: GeneratorExit"),
        (("two.json", "o.wexit"), "o.wexit: the wexit writer of plugin 'zoo' (conv-zoo) failed: SystemExit: 4"),
        (("two.json", "o.wraise"), "o.wraise: the wraise writer of plugin 'zoo' (conv-zoo) failed: ValueError: writer blew up"),
        (("two.json", "o.wraise", "--dry-run"), "o.wraise: the wraise writer of plugin 'zoo' (conv-zoo) failed: ValueError"),
        (("two.json", "o.partial"), "o.partial: the partial writer of plugin 'zoo' (conv-zoo) returned before taking every "
                                    "record (1 taken); nothing was written"),
    ]:
        r = cli(site, *args, cwd=tmp_path, **zoo)
        [error] = r.stderr.splitlines()
        assert r.returncode == 1 and error.startswith(f"convert: error: {line}"), (args, r.stderr)
        assert not [p for p in tmp_path.iterdir() if p.name.startswith("o.")], args  # nothing written


def test_the_python_api_raises_plugin_error_naming_the_plugin(site, tmp_path):
    code = ("import converter, sys\n"
            "from converter.errors import PluginError\n"
            "try:\n    converter.convert('two.json', 'o.wraise')\n"
            "except PluginError as exc:\n    print('PluginError:', exc)\n")
    (tmp_path / "two.json").write_text('{"a": 1}')
    e = {**os.environ, "PYTHONPATH": str(site), "CONVERTER_LOAD_PLUGINS": "conv-zoo"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, cwd=tmp_path, timeout=60)
    assert "PluginError: o.wraise: the wraise writer of plugin 'zoo' (conv-zoo) failed: ValueError" in r.stdout, r.stderr


def test_codec_output_must_be_bytes_and_a_failing_decode_names_the_codec(site, tmp_path):
    (tmp_path / "two.json").write_text('{"a": 1, "b": 2}')
    zoo = {"CONVERTER_LOAD_PLUGINS": "conv-zoo"}
    for codec, got in (("strcodec", "str"), ("nonecodec", "NoneType")):
        r = cli(site, "two.json", f"o-{codec}", "--to", "dbm.dumb", "--value-codec", codec, "-q", cwd=tmp_path, **zoo)
        assert r.returncode == 1 and _errors(r) == [
            f"convert: error: o-{codec}: record 'a': codec {codec!r} of plugin 'zoo' (conv-zoo) encoded a value "
            f"of type int as {got}, not bytes"], r.stderr
        assert not list(tmp_path.glob(f"o-{codec}*"))
    assert cli(site, "two.json", "db", "--to", "dbm.dumb", "-q", cwd=tmp_path).returncode == 0
    r = cli(site, "db", "o.json", "--value-codec", "keyerr", "-q", cwd=tmp_path, **zoo)
    assert r.returncode == 1 and _errors(r) == [
        "convert: error: record 'a' of db: codec 'keyerr' of plugin 'zoo' (conv-zoo) failed to decode: "
        "KeyError: 'decode boom'"], r.stderr


def test_a_sniff_never_claims_a_missing_or_empty_file(site, tmp_path):
    hijack = {"CONVERTER_LOAD_PLUGINS": "conv-hijack"}  # its claimall sniff says yes to anything
    r = cli(site, "missing.json", "x1.json", cwd=tmp_path, **hijack)
    [error] = _errors(r)
    assert r.returncode == 1 and error.startswith("convert: error: missing.json: no such file"), r.stderr
    (tmp_path / "empty.json").write_bytes(b"")
    r = cli(site, "empty.json", "x.json", cwd=tmp_path, **hijack)
    assert r.returncode == 1 and "not json" in r.stderr and "empty file" in r.stderr
    assert not (tmp_path / "x1.json").exists() and not (tmp_path / "x.json").exists()


def test_a_failing_sniff_or_describe_is_one_warning_and_the_rest_goes_on(site, tmp_path):
    zoo = {"CONVERTER_LOAD_PLUGINS": "conv-zoo"}
    (tmp_path / "a.boom").write_text("BOOM")
    (tmp_path / "b.boom").write_text("BOOM")
    r = cli(site, "identify", "a.boom", "b.boom", cwd=tmp_path, **zoo)
    assert r.returncode == 0 and r.stdout.splitlines() == ["a.boom: boom (extension .boom)", "b.boom: boom (extension .boom)"]
    assert r.stderr.splitlines() == ["convert: warning: the boom sniff of plugin 'zoo' (conv-zoo) failed: ValueError: "
                                     "sniff exploded; it is ignored (CONVERTER_DISABLE_PLUGINS=conv-zoo turns the plugin off)"]
    for name, why in (("a.draise", "failed: RuntimeError: describe blew up"), ("a.dlist", "returned list, not a dict")):
        (tmp_path / name).write_text("x")
        r = cli(site, "identify", name, cwd=tmp_path, **zoo)
        fmt = name[2:]
        assert r.returncode == 0 and r.stdout == f"{name}: {fmt} (extension .{fmt})\n", r.stderr
        assert r.stderr.splitlines() == [f"convert: warning: the {fmt} describe of plugin 'zoo' (conv-zoo) {why}; "
                                         f"it is ignored (CONVERTER_DISABLE_PLUGINS=conv-zoo turns the plugin off)"]


def test_a_reader_record_must_be_a_tuple(site, tmp_path):
    (tmp_path / "x.listpair").write_text("")
    r = cli(site, "x.listpair", "x.json", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-zoo")
    assert r.returncode == 1 and "yielded list \"['a', 1]\", not a (key, value) pair (a 2-tuple)" in r.stderr


def test_plugin_prints_never_reach_the_data_on_stdout(site, tmp_path):
    (tmp_path / "x.printer").write_text("")
    r = cli(site, "x.printer", "-", "--to", "json", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-loud")
    assert r.returncode == 0 and json.loads(r.stdout) == {"a": 1}, r.stdout
    assert "loud prints at import" in r.stderr and "the reader prints" in r.stderr


def test_a_replaced_built_in_is_visible_in_plugins_and_identify(site, tmp_path):
    rows = {r["name"]: r for r in json.loads(cli(site, "plugins", "--json", cwd=tmp_path).stdout)}
    assert rows["converter.plugins.gdbm"]["conflicts"] == ["format gdbm-dump: replaced by plugin 'replaces' (conv-replaces)"]
    assert rows["replaces"]["conflicts"] == ["format gdbm-dump: replaces the built-in"]
    (tmp_path / "x.dat").write_text("REPL")
    out = cli(site, "identify", "x.dat", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-replaces").stdout
    assert out.startswith("x.dat: gdbm-dump (REPL magic; the format of plugin 'replaces' (conv-replaces), "
                          "replacing the built-in gdbm-dump)"), out


def test_names_match_as_pip_normalises_them_and_strict_says_it_is_strict(site, tmp_path):
    r = cli(site, "plugins", "--json", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="Conv_Hijack,conv.codec",
            CONVERTER_DISABLE_PLUGINS="CONV-CODEC")
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["hijack"]["status"] == "loaded" and rows["codec"]["status"] == "disabled"
    assert r.stderr == ""  # both names are installed plugins: no "no installed plugin is called"
    r = cli(site, "plugins", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-raises", CONVERTER_PLUGINS_STRICT="1")
    assert r.returncode == 1 and "left out" not in r.stderr and "an error because CONVERTER_PLUGINS_STRICT is set" in r.stderr


def test_migrate_in_workers_warns_once_per_plugin(site, tmp_path):
    (tmp_path / "tree").mkdir()
    for i in range(2):
        (tmp_path / "tree" / f"s{i}.json").write_text('{"a": 1}')
    r = cli(site, "migrate", "tree", "out", "-j", "2", "-q", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-raises")
    assert r.returncode == 0, r.stderr
    assert [l for l in r.stderr.splitlines() if "conv-raises" in l] and len(
        [l for l in r.stderr.splitlines() if "conv-raises" in l]) == 1, r.stderr


HANGING = {
    "conv-spin": ("""
        import time
        from converter import Format, hookimpl
        def spin(head, path):  # a sniff caught in a loop
            while True:
                pass
        def stubborn(head, path):  # one that swallows every exception, and sleeps in C
            while True:
                try:
                    time.sleep(1)
                except BaseException:
                    pass
        @hookimpl
        def register_formats(register):
            register(Format(name="spin", sniff=spin, reader=lambda p, o: iter([("spun", 1)])))
            register(Format(name="stubborn", sniff=stubborn, reader=lambda p, o: iter([("stub", 1)])))
    """, "spin"),
    "conv-hangimport": ("while True:\n    pass\n", "hangimport"),
    "conv-hanghook": ("""
        from converter import hookimpl
        @hookimpl
        def register_codecs(register):
            while True:
                pass
    """, "hanghook"),
}


def test_plugin_code_that_never_returns_is_stopped_and_named_and_builtins_convert(tmp_path):
    """A sniff in a loop is stopped after guard.SNIFF_SECONDS, an import or a hook after
    guard.LOAD_SECONDS (set to 1 s here by a sitecustomize, to keep the test short)."""
    site = tmp_path / "site"
    site.mkdir()
    make_site(site, HANGING)
    (site / "sitecustomize.py").write_text("import converter.guard\nconverter.guard.LOAD_SECONDS = 1.0\n")
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"a": 1}))
    r = cli(site, "x.pkl", "x.json", cwd=tmp_path, CONVERTER_DISABLE_PLUGINS="conv-spin")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    warnings = [l for l in r.stderr.splitlines() if l.startswith("convert: warning:")]
    assert len(warnings) == 2, warnings
    for dist, what in [("conv-hangimport", "did not finish within 1 s, and was stopped while importing"),
                       ("conv-hanghook", "did not finish within 1 s, and was stopped in register_codecs")]:
        mine = [w for w in warnings if f"({dist} 2.5)" in w]
        assert len(mine) == 1 and what in mine[0], warnings
    # a sniff in a loop is stopped and ignored; one that swallows even that ends the process
    (tmp_path / "odd.bin").write_bytes(b"\x00\x01 no format's magic")
    r = cli(site, "identify", "odd.bin", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-spin")
    assert r.returncode == 1 and r.stderr.splitlines() == [
        "convert: warning: the spin sniff of plugin 'spin' (conv-spin) did not finish within 2 s, and was stopped; "
        "it is ignored (CONVERTER_DISABLE_PLUGINS=conv-spin turns the plugin off)",
        "convert: error: the stubborn sniff of plugin 'spin' (conv-spin) did not finish within 2 s and would not "
        "stop; exiting (CONVERTER_DISABLE_PLUGINS=conv-spin turns it off)"], r.stderr
    r = cli(site, "x.pkl", "y.json", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-spin", CONVERTER_DISABLE_PLUGINS="conv-spin")
    assert r.returncode == 0 and (tmp_path / "y.json").exists(), r.stderr  # and the hint works


DIVERGING = {
    "conv-good": ("""
        from converter import Format, hookimpl
        def read(path, options):
            with open(path, "rb") as f:
                yield ("content", f.read().decode())
        @hookimpl
        def register_formats(register):
            register(Format(name="good", extensions=(".good",), sniff=lambda h, p: "GOOD magic" if h.startswith(b"GOOD") else None,
                            reader=read))
    """, "good"),
    "conv-environ": ("""
        import os
        os.environ["CONVERTER_DISABLE_PLUGINS"] = "conv-good"  # meddling: must reach no worker
        os.environ["CONVERTER_PLUGINS_STRICT"] = "1"
        from converter import Format, hookimpl
        @hookimpl
        def register_formats(register):
            register(Format(name="environ", reader=lambda p, o: iter(())))
    """, "environ"),
    "conv-childfail": ("""
        import os
        if os.environ.get("CONV_CHILDFAIL_SEEN"):
            raise ImportError("only the first process may import me")
        os.environ["CONV_CHILDFAIL_SEEN"] = "1"
        from converter import Format, hookimpl
        def read(path, options):
            yield ("child", 1)
        @hookimpl
        def register_formats(register):
            register(Format(name="childfail", sniff=lambda h, p: "CHILD magic" if h.startswith(b"CHILD") else None,
                            reader=read))
    """, "childfail"),
}


@pytest.fixture(scope="module")
def diverging_site(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("diverging"), DIVERGING)


def test_a_plugin_setting_converter_variables_changes_no_workers_plugins(diverging_site, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.good").write_bytes(b"GOOD data")
    (tree / "b.json").write_text('{"a": 1}')
    for jobs in ("1", "2"):
        r = cli(diverging_site, "migrate", "tree", f"out{jobs}", "-j", jobs, "-q", cwd=tmp_path,
                CONVERTER_LOAD_PLUGINS="conv-good,conv-environ")
        assert r.returncode == 0, r.stderr
        report = json.loads((tmp_path / f"out{jobs}" / "migration-report.json").read_text())
        assert sorted(e["store"] for e in report["stores"]) == ["a.good", "b.json"], report
        assert all(e["status"] == "ok" for e in report["stores"]) and report["not_data"] == []


def test_a_plugin_that_fails_only_in_the_workers_is_said_and_its_stores_fail_not_vanish(diverging_site, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "c.child").write_bytes(b"CHILD data")
    for i in range(40):  # enough batches for the workers to detect some
        (tree / f"s{i}.json").write_text('{"a": %d}' % i)
    r = cli(diverging_site, "migrate", "tree", "out", "-j", "2", "-q", cwd=tmp_path,
            CONVERTER_LOAD_PLUGINS="conv-childfail")
    assert r.returncode == 1, r.stderr
    report = json.loads((tmp_path / "out" / "migration-report.json").read_text())
    assert report["not_data"] == []
    entry = {e["store"]: e for e in report["stores"]}["c.child"]
    assert entry["status"] == "failed" and "loaded in the migrating process but not in its worker processes" in \
        entry["error"] and "--jobs 1" in entry["error"], entry
    assert sum(e["status"] == "ok" for e in report["stores"]) == 40
    r = cli(diverging_site, "migrate", "tree", "out", "-j", "1", "-q", cwd=tmp_path,
            CONVERTER_LOAD_PLUGINS="conv-childfail")
    assert r.returncode == 0, r.stderr  # as the advice says


def test_a_plugin_error_that_names_no_file_is_given_the_files_name(tmp_path):
    site = make_site(tmp_path, {"conv-noname": ("""
        from converter import Format, hookimpl
        from converter.errors import FormatError
        from converter.jsontags import loads
        def read(path, options):
            yield ("a", 1)
            yield ("b", loads("not json"))  # a helper's error, with no name= given
        def eager(path, options):
            raise FormatError("the header is wrong")
        @hookimpl
        def register_formats(register):
            register(Format(name="noname", extensions=(".noname",), reader=read))
            register(Format(name="eager", extensions=(".eager",), reader=eager))
    """, "noname")})
    for name, says in (("x.noname", "Expecting value at line 1 column 1"), ("x.eager", "the header is wrong")):
        (tmp_path / name).write_text("x")
        r = cli(site, name, "out.json", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-noname")
        [line] = r.stderr.strip().splitlines()
        assert r.returncode == 1 and line.startswith(f"convert: error: {name}: ") and says in line, r.stderr
        assert not (tmp_path / "out.json").exists()


def test_a_reader_only_format_does_not_block_writing_another_plugins_extension_and_is_listed(tmp_path):
    site = make_site(tmp_path, {"conv-kvt": ("""
        from converter import Format, hookimpl
        def read(path, options):
            with open(path) as f:
                for line in f:
                    k, v = line.rstrip("\\n").split("=", 1)
                    yield k, v
        def write(path, records, options):
            with open(path, "w") as f:
                for k, v in records:
                    f.write(f"{k}={v}\\n")
        @hookimpl
        def register_formats(register):
            register(Format(name="kvt", extensions=(".kvt",), reader=read, writer=write))
    """, "kvt"), "conv-kvtread": ("""
        from converter import Format, hookimpl
        @hookimpl
        def register_formats(register):
            register(Format(name="kvtread", extensions=(".kvt",), reader=lambda p, o: iter([("r", "1")])))
    """, "kvtread")})
    (tmp_path / "a.json").write_text('{"k": "v"}')
    r = cli(site, "a.json", "o.kvt", "-q", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "o.kvt").read_text() == "k=v\n", r.stderr
    listing = {p["name"]: p for p in json.loads(cli(site, "plugins", "--json", cwd=tmp_path).stdout)}
    for mine, other in (("kvt", "kvtread"), ("kvtread", "kvt")):
        assert any(c.startswith(f"extension .kvt: also claimed by the format {other} of plugin '{other}'")
                   for c in listing[mine]["conflicts"]), listing[mine]


def test_a_plugin_raising_keyboard_interrupt_itself_is_its_failure_not_a_ctrl_c(tmp_path):
    site = make_site(tmp_path, {"conv-kbhook": ("""
        from converter import hookimpl
        @hookimpl
        def register_formats(register):
            raise KeyboardInterrupt
    """, "kbhook"), "conv-kbimport": ("raise KeyboardInterrupt\n", "kbimport")})
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"a": 1}))
    r = cli(site, "x.pkl", "x.json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads((tmp_path / "x.json").read_text()) == {"a": 1}, r.stderr
    warnings = r.stderr.splitlines()
    assert any("(conv-kbhook 2.5) failed in register_formats: KeyboardInterrupt" in w for w in warnings), warnings
    assert any("(conv-kbimport 2.5) failed to import: KeyboardInterrupt" in w for w in warnings), warnings


def test_ctrl_c_while_a_plugin_imports_still_stops_the_command(tmp_path):
    site = make_site(tmp_path, {"conv-slowimport": ("""
        import os, time
        open(os.environ["SLOW_MARK"], "w").close()
        time.sleep(15)
    """, "slowimport")})
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"a": 1}))
    mark = tmp_path / "importing"
    env = {k: v for k, v in os.environ.items() if k not in ("CONVERTER_LOAD_PLUGINS", "CONVERTER_PLUGINS_STRICT")}
    env.update(PYTHONPATH=str(site), SLOW_MARK=str(mark))
    proc = subprocess.Popen([sys.executable, "-m", "converter", "x.pkl", "x.json"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        while not mark.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130 and "interrupted" in proc.stderr.read() and not (tmp_path / "x.json").exists()


def test_a_writer_that_makes_no_file_or_a_directory_is_refused_naming_the_plugin(tmp_path):
    site = make_site(tmp_path, {"conv-oddwriters": ("""
        import os
        from converter import Format, hookimpl
        def nofile(path, records, options):
            for _ in records:
                pass
        def adir(path, records, options):
            for _ in records:
                pass
            os.mkdir(path)
        @hookimpl
        def register_formats(register):
            register(Format(name="wnofile", extensions=(".wnofile",), writer=nofile))
            register(Format(name="wdir", extensions=(".wdir",), writer=adir))
    """, "oddwriters")})
    (tmp_path / "a.json").write_text('{"k": "v"}')
    for out, says in (("o.wnofile", "the wnofile writer of plugin 'oddwriters' (conv-oddwriters) produced no file"),
                      ("o.wdir", "the wdir writer of plugin 'oddwriters' (conv-oddwriters) made a directory, not a file")):
        r = cli(site, "a.json", out, "-q", cwd=tmp_path)
        assert r.returncode == 1 and r.stderr.strip() == f"convert: error: {out}: {says}", r.stderr
        assert not (tmp_path / out).exists() and not list(tmp_path.glob("*.converting"))


def test_identify_shows_a_plugin_format_that_claims_the_same_extension(tmp_path):
    site = make_site(tmp_path, {"conv-mypkl": ("""
        from converter import Format, hookimpl
        @hookimpl
        def register_formats(register):
            register(Format(name="mypkl", extensions=(".pkl",), reader=lambda p, o: iter([("m", 1)])))
    """, "mypkl")})
    (tmp_path / "g.pkl").write_bytes(pickle.dumps({"a": 1}))
    r = cli(site, "identify", "g.pkl", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("g.pkl: pickle (pickle protocol"), r.stdout
    assert ("also matches: mypkl (extension .pkl; plugin 'mypkl' (conv-mypkl)'s format: the built-in pickle "
            "keeps it)") in r.stdout, r.stdout


def test_a_plugin_with_no_hook_is_said_and_an_unknown_name_points_at_failed_plugins(tmp_path):
    site = make_site(tmp_path, {"conv-nohooks": ("VALUE = 1\n", "nohooks"),
                                "conv-brokencodec": ("raise RuntimeError('cannot start')\n", "brokencodec")})
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"a": 1}))
    r = cli(site, "x.pkl", "x.json", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    [nohooks] = [w for w in r.stderr.splitlines() if "(conv-nohooks 2.5)" in w]
    assert "implements neither register_formats nor register_codecs" in nohooks, nohooks
    listing = {p["name"]: p for p in json.loads(cli(site, "plugins", "--json", cwd=tmp_path).stdout)}
    assert listing["nohooks"]["status"] == "failed"
    r = cli(site, "x.pkl", "y.json", "--value-codec", "strenc", cwd=tmp_path)
    assert r.returncode == 2 and "Unknown codec 'strenc'" in r.stderr and \
        "plugins that failed to load: " in r.stderr and "brokencodec" in r.stderr, r.stderr


def test_a_plugin_store_takes_no_built_in_stores_file_and_nothing_outside_its_directory(tmp_path):
    site = make_site(tmp_path, {"conv-greedyfiles": ("""
        from pathlib import Path
        from converter import Format, hookimpl
        def files(path):
            path = Path(path)
            return [path, path.with_suffix(".kvi"), path.parent / "a.json", path.parent / ".." / "outside.txt"]
        @hookimpl
        def register_formats(register):
            register(Format(name="greedy", extensions=(".greedy",), files=files,
                            sniff=lambda h, p: "GREEDY magic" if h.startswith(b"GREEDY") else None,
                            reader=lambda p, o: iter([("g", 1)])))
    """, "greedyfiles")})
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "x.greedy").write_bytes(b"GREEDY\n")
    (tree / "x.kvi").write_bytes(b"index\n")
    (tree / "a.json").write_text('{"a": 1}')
    (tmp_path / "outside.txt").write_text("not in the tree")
    r = cli(site, "migrate", "tree", "out", "-j", "1", "-q", cwd=tmp_path, CONVERTER_LOAD_PLUGINS="conv-greedyfiles")
    assert r.returncode == 0, r.stderr
    stores = {e["store"]: e for e in json.loads((tmp_path / "out" / "migration-report.json").read_text())["stores"]}
    assert sorted(stores) == ["a.json", "x.greedy"], stores
    assert [s["path"] for s in stores["x.greedy"]["sources"]] == ["x.greedy", "x.kvi"]
    assert stores["a.json"]["status"] == "ok" and stores["a.json"]["format"] == "json"
