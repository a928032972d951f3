"""Plugin isolation, no hijacking, the record contract and `convert plugins`, with real throwaway
plugin distributions (a dist-info with entry points on PYTHONPATH) and the real command line."""

import json
import os
import pickle
import subprocess
import sys
import textwrap
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
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    for dist, (source, ep) in PLUGINS.items():
        module = dist.replace("-", "_")
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{module}-2.5.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 2.5\n")
        (info / "entry_points.txt").write_text(f"[converter]\n{ep} = {module}\n")
    return site


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
                       ("conv-clash", "already registered by plugin"),
                       ("conv-future", "needs plugin API 99, and this converter-toolkit provides 1")]:
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
    err = [l for l in r.stderr.splitlines() if not l.startswith("convert: warning:")]
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
