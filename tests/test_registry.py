"""The plugin contract: throwaway plugins, entry points, validation, precedence."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

from converter import Codec, Format, convert, hookimpl, read_records
from converter.errors import PluginError, UnknownFormatError
from converter.registry import Registry, make_plugin_manager


def _read_upper(path, options):
    for line in Path(path).read_text().splitlines():
        k, _, v = line.partition("=")
        yield k, v


def _write_upper(path, records, options):
    with open(path, "w") as f:
        for k, v in records:
            f.write(f"{k}={v}\n")


class IniPlugin:
    @hookimpl
    def register_formats(self, register):
        register(Format(name="kv-text", extensions=(".kvt",), reader=_read_upper, writer=_write_upper,
                        sniff=lambda head, path: "KEY=VALUE lines" if head.startswith(b"#kvt") else None))


@pytest.fixture
def strict(monkeypatch):
    """Plugin failures raise (CONVERTER_PLUGINS_STRICT=1) instead of leaving the plugin out."""
    monkeypatch.setenv("CONVERTER_PLUGINS_STRICT", "1")


def registry_with(*plugins):
    pm = make_plugin_manager(load_entrypoints=False)
    for p in plugins:
        pm.register(p)
    return Registry(pm)


def test_a_throwaway_plugin_is_used_like_a_builtin(tmp_path):
    reg = registry_with(IniPlugin())
    src = tmp_path / "in.kvt"
    src.write_text("#kvt=header\na=1\nb=2\n")
    convert(src, tmp_path / "out.json", registry=reg)
    assert list(read_records(tmp_path / "out.json", registry=reg)) == [("#kvt", "header"), ("a", "1"), ("b", "2")]
    # detection by content, not only by extension
    other = tmp_path / "noext"
    other.write_text("#kvt=x\n")
    assert list(read_records(other, registry=reg)) == [("#kvt", "x")]
    assert reg.format("kv-text").plugin != "" and "kv-text" not in {f.name for f in registry_with()}


def test_a_clash_names_both_plugins(strict):
    class Clash:
        @hookimpl
        def register_formats(self, register):
            register(Format(name="JSON", reader=_read_upper))

    with pytest.raises(PluginError, match=r'registers the format name .JSON., already the name of a format of plugin '
                                          r'"converter.plugins.json" \(set replaces=True'):
        registry_with(Clash())

    class AliasClash:
        @hookimpl
        def register_formats(self, register):
            register(Format(name="mydb", aliases=("dbhash",), reader=_read_upper))

    with pytest.raises(PluginError, match=r'registers the format alias .dbhash., already an alias of the format '
                                          r'.berkeleydb. of plugin "converter.plugins.bdb"; choose another'):
        registry_with(AliasClash())


def test_replaces_takes_over_a_builtin(tmp_path):
    class Better:
        @hookimpl
        def register_formats(self, register):
            register(Format(name="json", reader=_read_upper, writer=_write_upper, replaces=True))

    reg = registry_with(Better())
    assert reg.format("json").reader.__wrapped__ is _read_upper  # behind the guard (converter/guard.py)
    [shown] = reg.plugins["converter.plugins.json"].conflicts  # convert plugins says the built-in is replaced
    assert shown.startswith("format json: replaced by plugin ")


@pytest.mark.parametrize("fmt, message", [
    (Format(name=""), "a format named ''"),
    (Format(name="has space", reader=_read_upper), "no spaces"),
    (Format(name="x", reader=_read_upper, aliases="abc"), r"aliases='abc', a str; it must be a tuple of str"),
    (Format(name="x", reader=_read_upper, priority="high"), "priority='high', a str; it must be int"),
    (Format(name="x", reader=_read_upper, kv="no"), "kv='no', a str; it must be bool"),
    (Format(name="x"), "neither a reader nor a writer"),
    (Format(name="x", reader=_read_upper, extensions=("txt",)), 'must start with "."'),
    ({"name": "x"}, "not a converter.Format"),
])
def test_invalid_registrations_name_the_plugin(fmt, message, strict):
    class Bad:
        @hookimpl
        def register_formats(self, register):
            register(fmt)

    with pytest.raises(PluginError, match=message) as exc:
        registry_with(Bad())
    assert "plugin" in str(exc.value)


def test_a_plugin_that_raises_is_wrapped(strict):
    class Broken:
        @hookimpl
        def register_formats(self, register):
            raise RuntimeError("boom")

    with pytest.raises(PluginError, match=r"plugin '.*' failed in register_formats: RuntimeError: boom"):
        registry_with(Broken())


def test_codecs_register_and_are_used(tmp_path):
    class Rot13:
        @hookimpl
        def register_codecs(self, register):
            import codecs as c

            register(Codec("rot13", lambda d, o, w: c.decode(d.decode(), "rot13"),
                           lambda v, o: c.encode(v, "rot13").encode()))

    reg = registry_with(Rot13())
    src = tmp_path / "in.json"
    src.write_text('{"a": "hello"}')
    convert(src, tmp_path / "db", to="dbm.dumb", value_codec="rot13", registry=reg)
    assert b"uryyb" in (tmp_path / "db.dat").read_bytes()
    assert list(read_records(tmp_path / "db", registry=reg, options=_opts(value_codec="rot13"))) == [("a", "hello")]


def _opts(**kw):
    from converter import Options

    return Options(**kw)


def test_unknown_format_lists_the_choices():
    with pytest.raises(UnknownFormatError, match=r"Unknown format 'yaml'. Pick one of \[.*'json'"):
        registry_with().format("yaml")


def _make_distribution(tmp_path):
    """A real installed distribution (dist-info on sys.path) with a converter entry point."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "conv_demo_plugin.py").write_text(textwrap.dedent('''
        from converter import Format, hookimpl

        def read(path, options):
            yield "demo", open(path).read()

        @hookimpl
        def register_formats(register):
            register(Format(name="demo", extensions=(".demo",), reader=read))
    '''))
    info = tmp_path / "conv_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: conv-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[converter]\ndemo = conv_demo_plugin\n")
    return tmp_path


def test_entry_point_plugins_are_found(tmp_path, monkeypatch):
    site = _make_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    reg = Registry(make_plugin_manager(load_entrypoints=True))
    fmt = reg.format("demo")
    assert fmt.distribution == "conv-demo"
    # and CONVERTER_LOAD_PLUGINS="" keeps them out
    assert "demo" not in {f.name for f in Registry(make_plugin_manager())}


def test_entry_point_plugin_in_the_real_command(tmp_path):
    site = _make_distribution(tmp_path / "site")
    (tmp_path / "x.demo").write_text("hello")
    env = {k: v for k, v in os.environ.items() if k != "CONVERTER_LOAD_PLUGINS"}
    env["PYTHONPATH"] = str(site)
    p = subprocess.run([sys.executable, "-m", "converter", "formats"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert any(l.split()[0] == "demo" and "conv-demo" in l for l in p.stdout.splitlines() if l.strip())
    p = subprocess.run([sys.executable, "-m", "converter", str(tmp_path / "x.demo"), str(tmp_path / "x.json"), "-q"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    env["CONVERTER_LOAD_PLUGINS"] = ""
    p = subprocess.run([sys.executable, "-m", "converter", "formats"], capture_output=True, text=True, env=env)
    assert "conv-demo" not in p.stdout


def test_a_format_may_name_its_functions_as_lazy_references(tmp_path):
    """"package.module:function" strings are imported on first call (how built-ins stay light)."""
    (tmp_path / "lazy_kvt.py").write_text(textwrap.dedent('''
        from pathlib import Path
        IMPORTED = True
        def read(path, options):
            for line in Path(path).read_text().splitlines():
                k, _, v = line.partition("=")
                yield k, v
    '''))

    class LazyPlugin:
        @hookimpl
        def register_formats(self, register):
            register(Format(name="lazy-kvt", extensions=(".lkvt",), reader="lazy_kvt:read"))

    sys.path.insert(0, str(tmp_path))
    try:
        reg = registry_with(LazyPlugin())
        assert "lazy_kvt" not in sys.modules
        (tmp_path / "a.lkvt").write_text("a=1\nb=2\n")
        assert list(read_records(tmp_path / "a.lkvt", registry=reg)) == [("a", "1"), ("b", "2")]
        assert sys.modules["lazy_kvt"].IMPORTED
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lazy_kvt", None)


@pytest.mark.parametrize("ref", ["no_colon", "mod:", ":name", "mod:not an identifier"])
def test_a_malformed_lazy_reference_is_refused_naming_the_plugin(ref, strict):
    class Bad:
        @hookimpl
        def register_formats(self, register):
            register(Format(name="badref", reader=ref))

    with pytest.raises(PluginError, match="badref.*reader"):
        registry_with(Bad())
