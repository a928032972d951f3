"""The ``convert`` command. The library raises; this module turns errors into messages and exit codes.

Start-up is most of a small conversion, so this module imports little: no ``from __future__
import annotations`` (typer would ``eval`` every option's annotation twice per command, ~15 ms),
rich only when something needs it, the library's modules inside the commands.
"""

import contextlib
import errno
import io
import json
import re
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from .errors import ConverterError, OptionError
from .options import Options


class _Console:
    """Plain lines on stdout or stderr; rich is imported only for what needs it.

    Importing rich.console costs more CPU than a small conversion itself, so ``print(text,
    markup=False)`` writes the text as it is (rich would also have turned ``:name:`` in a file
    name into an emoji). Anything else -- markup, styles, ``print_json``, the progress bar's
    ``console`` -- goes to a rich Console made on first use.
    """

    def __init__(self, stderr: bool):
        self.stderr = stderr
        self._rich = None

    @property
    def file(self):
        return sys.stderr if self.stderr else sys.stdout  # looked up each time, as rich does

    @property
    def rich(self):
        if self._rich is None:
            from rich.console import Console

            self._rich = Console(stderr=self.stderr, highlight=False, soft_wrap=True)
            self._rich.on_broken_pipe = _broken_pipe  # rich would exit 1; the policy says 141, quietly
        return self._rich

    @property
    def is_terminal(self) -> bool:
        """rich's answer (FORCE_COLOR, TTY_COMPATIBLE, Jupyter...), asked only when it may be yes."""
        if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ:
            return self.rich.is_terminal
        try:
            tty = self.file.isatty()
        except (AttributeError, ValueError):
            return False
        return tty and self.rich.is_terminal

    def print(self, *objects, markup=None, **kwargs):
        try:
            if markup is False and not kwargs and all(isinstance(o, str) for o in objects):
                self.file.write(" ".join(objects) + "\n")
                return
            self.rich.print(*objects, markup=markup, **kwargs)
        except BrokenPipeError:
            if not self.stderr:
                _broken_pipe()
        except OSError:
            if not self.stderr:
                raise  # the listing or output the user asked for: the error policy words it
            # a closed or full stderr loses the message, never the conversion's outcome

    def print_json(self, *args, **kwargs):
        self.rich.print_json(*args, **kwargs)


def _broken_pipe():
    """The reader of a listing went away (``| head``): exit as SIGPIPE would, quietly (click would
    say exit 1, and rich too)."""
    from .errorpolicy import BROKEN_PIPE

    _quiet_stdout()
    raise SystemExit(BROKEN_PIPE)


err = _Console(stderr=True)
out = _Console(stderr=False)

_show_warning_default = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """A plugin left out is one line on stderr, not a Python warning with a source location."""
    if category.__name__ == "PluginWarning":
        err.print(f"convert: warning: {message}", markup=False)
    else:
        _show_warning_default(message, category, filename, lineno, file, line)


warnings.showwarning = _show_warning

SUBCOMMANDS = ("convert", "verify", "identify", "formats", "plugins", "migrate")


def _help_names() -> tuple[str, str]:
    """The formats and codecs that help texts list: from the live registry (plugins included)
    when help is asked for, else the built-in names, so a conversion never loads the registry
    just to describe its options."""
    formats = ("pickle, json, jsonl, shelve, sqlite, dbm.dumb, dbm.gnu, dbm.ndbm, dbm.sqlite3, berkeleydb, "
               "gdbm-dump, db_dump")
    codecs = "raw, utf8, utf8-or-raw, pickle, json"
    if {"-h", "--help"} & set(sys.argv[1:]):
        try:
            from .registry import get_registry

            registry = get_registry()
            formats = ", ".join(f.name for f in sorted(registry, key=lambda f: (not f.builtin, f.name)))
            codecs = ", ".join(registry.codecs)
        except Exception:  # a broken registry is reported by the command itself, not by its help
            pass
    return f"{formats} (`convert formats`)", f"{codecs} (`convert plugins`)"


_FORMATS, _CODECS = _help_names()
_EXAMPLES = """Examples:

\b
  convert people.pkl people.json         formats from content and extension
  convert legacy.db out.sqlite           a Berkeley DB file, no libdb needed
  convert data.pkl - --to jsonl | head   - is stdin or stdout
  convert old.gdbm new.db --to dbm.sqlite3 --verify
  convert verify old.gdbm new.db         the same records? (formats may differ)
  convert identify FILE...               what is this file, and why
  convert migrate old-app/ migrated/     every store in a tree, verified, with a report
"""


class _DefaultToConvert(TyperGroup):
    """``convert IN OUT`` runs the ``convert`` command; ``convert identify ...`` the subcommand.

    A file named like a subcommand can be given as ``./formats``.
    """

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version", "--install-completion", "--show-completion"):
            _no_such_command(args)
            if args[0].startswith("--"):  # convert IN OUT, the common case, looks up nothing more
                _no_such_top_option(args[0], self.get_command(ctx, "convert"))
            args = ["convert", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx):
        return list(SUBCOMMANDS)


def _no_such_command(args):
    """``convert fromats``: a word that is no file and looks like a subcommand is a typo, not an input."""
    word = args[0]
    if word.startswith("-") or os.path.lexists(word) or any(c in word for c in "./\\"):
        return
    import difflib

    close = difflib.get_close_matches(word, SUBCOMMANDS, n=1, cutoff=0.7)
    if close and len(args) <= 2:
        from typer._click.exceptions import UsageError

        raise UsageError(f"no such command or file {word!r}; did you mean {close[0]!r}?")


_TOP_OPTIONS = ("--version", "--install-completion", "--show-completion", "--help")


def _no_such_top_option(word, command):
    """``convert --versoin``: an option of ``convert`` itself, not of the conversion, misspelt.

    Without this the word reaches the conversion's options, whose closest match (``--verify``)
    is the wrong suggestion. A word closer to a conversion option is left to that command.
    """
    if "=" in word:
        return
    import difflib

    def best(names):
        return max((difflib.SequenceMatcher(None, word, n).ratio(), n) for n in names)

    own = [o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
    if word in own:
        return
    score, name = best(_TOP_OPTIONS)
    if score >= 0.75 and score > best(own)[0]:
        from typer._click.exceptions import UsageError

        raise UsageError(f"no such option: {word} (did you mean {name}?)")


app = typer.Typer(
    cls=_DefaultToConvert,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    help="Convert data between Python's persistence formats: pickle, JSON, JSON Lines, the dbm family, "
    "shelve and SQLite.  Usage: convert IN OUT [OPTIONS].  (ImageMagick also installs a `convert`; "
    "`python -m converter` always means this one.)",
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    epilog=_EXAMPLES,
)


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _clean(text) -> str:
    """``text`` with control characters (and lone surrogates from undecodable file names)
    escaped, so a name from a file cannot drive the terminal."""
    text = str(text)
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii")
                            if m.group() < "\ud800" else f"\\u{ord(m.group()):04x}", text)


def _fail(exc: BaseException, debug: bool, code: int = 1):
    if debug:
        raise exc
    err.print(f"convert: error: {_clean(exc)}", markup=False)
    raise typer.Exit(code)


def _policy_code(exc: BaseException, where: str = "") -> int:
    """Say what the policy says of ``exc`` (nothing after a broken pipe) and return its exit status."""
    from .errorpolicy import BROKEN_PIPE, answer

    message, code = answer(exc)
    if code == BROKEN_PIPE:
        _quiet_stdout()
    elif message:
        err.print(f"convert: error: {where}{message}", markup=False)
    return code


def _policy_text(exc: BaseException):
    from .errorpolicy import answer

    known = answer(exc)
    return known[0] if known else None


def _quiet_stdout():
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _run(fn, debug: bool, interrupted: str = "nothing was written"):
    """``fn()``, with every failure turned into the policy's line and exit status.

    ``interrupted``: what is true of the output when Ctrl-C stops ``fn``.
    """
    try:
        return fn()
    except OptionError as exc:  # an unknown format or codec, a bad option value: a usage error
        _fail(exc, debug, 2)
    except ConverterError as exc:
        _fail(exc, debug, 1)
    except KeyboardInterrupt:
        if debug:
            raise
        err.print(f"convert: interrupted; {interrupted}", markup=False)
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except (OSError, MemoryError, RecursionError) as exc:  # the system said no: the policy words it
        if debug:
            raise
        raise typer.Exit(_policy_code(exc)) from None
    except Exception as exc:  # a bug, or a plugin's: short message, traceback behind --debug
        if debug:
            raise
        err.print(f"convert: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", markup=False)
        raise typer.Exit(1) from None


def _show_version(value: bool):
    if value:
        from . import __version__

        out.print(f"converter-toolkit {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="print the version and exit")] = False,
):
    """Convert data between Python's persistence formats."""


def _complete_formats(incomplete: str) -> list[str]:
    """Shell completion of --from/--to/--format-a/-b: the live registry's names."""
    from .registry import get_registry

    return [f.name for f in get_registry() if f.name.startswith(incomplete)]


def _complete_codecs(incomplete: str) -> list[str]:
    from .registry import get_registry

    return [c for c in sorted(get_registry().codecs) if c.startswith(incomplete)]


def _completer(*choices: str):
    return lambda incomplete: [c for c in choices if c.startswith(incomplete)]


def _budget_option(text):
    """--budget name=value,... on top of CONVERTER_BUDGET; None when not given."""
    if text is None:
        return None
    from .budget import Budget, from_env

    try:
        return Budget.parse(text, from_env())
    except ConverterError as exc:  # a malformed --budget (or CONVERTER_BUDGET): a bad option value
        raise OptionError(str(exc)) from None


@app.command("convert", help="Convert IN to OUT (formats detected from content and extension).", epilog=_EXAMPLES)
def convert_cmd(
    src: Annotated[Path, typer.Argument(metavar="IN", readable=False, help="input file (or - for stdin)", show_default=False)],
    dst: Annotated[Path, typer.Argument(metavar="OUT", readable=False, help="output file (or - for stdout)", show_default=False)],
    from_: Annotated[Optional[str], typer.Option("--from", metavar="FORMAT", autocompletion=_complete_formats, help=f"input format: {_FORMATS}")] = None,
    to: Annotated[Optional[str], typer.Option("--to", metavar="FORMAT", autocompletion=_complete_formats, help="output format (the same names)")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="replace an existing output")] = False,
    key_codec: Annotated[Optional[str], typer.Option(metavar="CODEC", autocompletion=_complete_codecs, help=f"codec of a dbm store's keys: {_CODECS}")] = None,
    value_codec: Annotated[Optional[str], typer.Option(metavar="CODEC", autocompletion=_complete_codecs, help="codec of a dbm store's values (the same names)")] = None,
    pickle_protocol: Annotated[int, typer.Option(metavar="N", help="protocol of pickles written, 0-5 (0-2 for Python 2 readers)")] = 4,
    json_style: Annotated[str, typer.Option(metavar="STYLE", autocompletion=_completer("tagged", "plain"), help="tagged (lossless) or plain (ordinary JSON; changes are reported)")] = "tagged",
    allow: Annotated[Optional[list[str]], typer.Option(metavar="MODULE.NAME", help="allow one more global in pickles (repeatable)")] = None,
    trust: Annotated[bool, typer.Option("--trust", help="unpickle with the full unpickler: RUNS CODE from the input")] = False,
    py2_strings: Annotated[str, typer.Option(metavar="MODE", autocompletion=_completer("utf8", "latin1", "bytes"), help="Python 2 byte strings: utf8 (to str, error if not UTF-8), latin1, bytes")] = "utf8",
    table: Annotated[Optional[str], typer.Option(metavar="NAME", help="SQLite table to read or write")] = None,
    layout: Annotated[str, typer.Option(metavar="LAYOUT", autocompletion=_completer("auto", "table", "kv"), help="SQLite output: auto, table (a column per field) or kv")] = "auto",
    pk: Annotated[Optional[str], typer.Option(metavar="FIELD", help="SQLite output: the field that is the primary key (default: a column `key` holding the record key)", show_default=False)] = None,
    dbm: Annotated[Optional[str], typer.Option(metavar="FORMAT", autocompletion=_completer("dbm.dumb", "dbm.sqlite3", "dbm.gnu", "dbm.ndbm"), help="dbm flavour of a shelve output: dbm.dumb, dbm.sqlite3, dbm.gnu, dbm.ndbm (default: what shelve.open makes here)")] = None,
    database: Annotated[Optional[str], typer.Option(metavar="NAME", help="Berkeley DB subdatabase to read")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="read everything, report what the output would refuse or change; write nothing")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="re-read the output and compare every record with the input")] = False,
    budget: Annotated[Optional[str], typer.Option(metavar="LIMITS", help="raise resource limits for a trusted input, e.g. depth=5000,bytes=8G (see README)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar, notes or summary")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
):
    started = time.perf_counter()
    if verify and (dry_run or str(src) == "-" or str(dst) == "-"):
        raise typer.BadParameter("needs a real input file and output file (not -, not --dry-run)", param_hint="--verify")
    options = _run(lambda: Options(
        key_codec=key_codec, value_codec=value_codec, pickle_protocol=pickle_protocol, json_style=json_style,
        allow=tuple(allow or ()), trust=trust, py2_strings=py2_strings, table=table, layout=layout, pk=pk,
        dbm=dbm, database=database, force=force, budget=_budget_option(budget), lossless=verify,
    ), debug)
    if not quiet:
        options.on_note = lambda m: err.print(f"note: {m}", markup=False)

    def work():
        from .pipeline import convert

        if trust and not quiet:
            err.print("warning: --trust unpickles with the full unpickler, which runs any code in the input", markup=False)
        show = not quiet and err.is_terminal
        if not show:
            return convert(src, dst, from_=from_, to=to, options=options, dry_run=dry_run)
        with _progress_bar() as progress:
            task = progress.add_task("converting", total=None)
            return convert(src, dst, from_=from_, to=to, options=options, dry_run=dry_run,
                           on_progress=lambda n: progress.update(task, completed=n))

    result = _run(work, debug)
    if dry_run:
        if not quiet:
            err.print(f"dry run: {result.records} record(s) {src} ({result.source_format}) -> {dst} "
                      f"({result.sink_format}) would be written; nothing was written", markup=False)
        return
    if verify:
        _verify_after(src, dst, result, options, quiet, debug)
    if not quiet:
        seconds = time.perf_counter() - started  # the whole command: detection, conversion, --verify
        rate = result.records / seconds if seconds > 0 else 0
        summary = (f"{result.records:,} record(s): {src} ({result.source_format}) -> {dst} ({result.sink_format}) "
                   f"in {seconds:.2f}s ({rate:,.0f} records/s)")
        if result.overridden:
            summary += (f"; {result.overridden} key(s) repeated, every record kept" if result.kept_every_record
                        else f"; {result.overridden} key(s) overridden")
        err.print(_clean(summary), markup=False)


def _verify_after(src, dst, result, options, quiet, debug):
    from dataclasses import replace

    from .verify import compare, describe_differences

    opts = replace(options, on_note=None, notes=[])
    unchecked = (f"{dst} was written ({result.records:,} record(s)) but not verified; "
                 f"`convert verify {src} {dst}` checks it")
    with _verify_progress(quiet, result.records) as progress:
        comparison = _run(lambda: compare(src, dst, format_a=result.source_format, format_b=result.sink_format,
                                          options=opts, on_progress=progress), debug, interrupted=unchecked)
    if not comparison.equal:
        for line in describe_differences(comparison, src, dst, format_a=result.source_format,
                                         format_b=result.sink_format, options=opts):
            err.print(line, markup=False)
        err.print(f"convert: error: verification failed: {dst} does not hold the same records as {src}; "
                  f"{dst} is kept for inspection", markup=False)
        raise typer.Exit(1)
    if not quiet:
        err.print(f"verified: {comparison.b_records} record(s) in {dst} match {src}", markup=False)


def _progress_bar():
    """rich's progress display on stderr: spinner, what, records so far, rate, time."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} records"),
                    _RateColumn(), _ShareColumn(), TimeElapsedColumn(), console=err.rich, transient=True)


@contextlib.contextmanager
def _verify_progress(quiet: bool, total):
    """A progress display for the two reads of a comparison (on a terminal, unless quiet)."""
    if quiet or not err.is_terminal:
        yield None
        return
    with _progress_bar() as bar:
        tasks = {}

        seen = {}

        def update(side, n):
            if side not in tasks:
                # B's expected total is what A held (they are equal when the stores are)
                expected = total if total is not None else seen.get("a")
                tasks[side] = bar.add_task(f"verifying: reading {'A' if side == 'a' else 'B'}", total=expected)
            seen[side] = n
            bar.update(tasks[side], completed=n)

        yield update


@app.command("verify", help="Compare two stores record by record (formats may differ); exit 0 only when equal.")
def verify_cmd(
    a: Annotated[Path, typer.Argument(metavar="A", readable=False, show_default=False)],
    b: Annotated[Path, typer.Argument(metavar="B", readable=False, show_default=False)],
    format_a: Annotated[Optional[str], typer.Option("--format-a", metavar="FORMAT", autocompletion=_complete_formats, help=f"format of A (default: detected): {_FORMATS}")] = None,
    format_b: Annotated[Optional[str], typer.Option("--format-b", metavar="FORMAT", autocompletion=_complete_formats, help="format of B (default: detected)")] = None,
    key_codec: Annotated[Optional[str], typer.Option(metavar="CODEC", autocompletion=_complete_codecs, help=f"codec of dbm keys on both sides: {_CODECS}")] = None,
    value_codec: Annotated[Optional[str], typer.Option(metavar="CODEC", autocompletion=_complete_codecs, help="codec of dbm values on both sides")] = None,
    allow: Annotated[Optional[list[str]], typer.Option(metavar="MODULE.NAME", help="allow one more global in pickles (repeatable)")] = None,
    trust: Annotated[bool, typer.Option("--trust", help="unpickle with the full unpickler: RUNS CODE")] = False,
    py2_strings: Annotated[str, typer.Option(metavar="MODE", autocompletion=_completer("utf8", "latin1", "bytes"), help="Python 2 byte strings: utf8, latin1, bytes")] = "utf8",
    table: Annotated[Optional[str], typer.Option(metavar="NAME", help="SQLite table to read")] = None,
    database: Annotated[Optional[str], typer.Option(metavar="NAME", help="Berkeley DB subdatabase to read")] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="how many differences to show")] = 10,
    budget: Annotated[Optional[str], typer.Option(metavar="LIMITS", help="raise resource limits for trusted inputs (see README)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress and no report: the exit status says it")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
):
    from .verify import compare, describe_differences

    options = _run(lambda: Options(key_codec=key_codec, value_codec=value_codec, allow=tuple(allow or ()), trust=trust,
                                   py2_strings=py2_strings, table=table, database=database,
                                   budget=_budget_option(budget)), debug)
    with _verify_progress(quiet, None) as progress:
        comparison = _run(lambda: compare(a, b, format_a=format_a, format_b=format_b, options=options,
                                          limit=limit, on_progress=progress), debug)
    if quiet:
        raise typer.Exit(0 if comparison.equal else 1)
    lines = _run(lambda: describe_differences(comparison, a, b, format_a=format_a, format_b=format_b,
                                              options=options), debug)
    for line in lines:
        out.print(line, markup=False)
    if not comparison.equal:
        raise typer.Exit(1)


@app.command("identify", help="Tell what each file is, and why.")
def identify_cmd(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", readable=False, show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
):
    from .identify import identify

    failed = False
    reports = []
    for path in paths:
        try:
            reports.append(_run(lambda: identify(path), True))
        except ConverterError as exc:
            failed = True
            reports.append({"path": str(path), "error": str(exc)})
            if not as_json:
                err.print(f"convert: error: {_clean(exc)}", markup=False)
            continue
        except Exception as exc:
            if debug:
                raise
            failed = True
            reports.append({"path": str(path), "error": f"{type(exc).__name__}: {exc}"})
            text = _policy_text(exc) or f"{type(exc).__name__}: {exc}"
            if not text.startswith(f"{path}:"):  # the policy names the file an OSError names
                text = f"{path}: {text}"
            err.print(f"convert: error: {_clean(text)}", markup=False)
            continue
        if not as_json:
            r = reports[-1]
            out.print(_clean(f"{r['path']}: {r['format']} ({r['reason']})"), markup=False)
            for k, v in r.get("details", {}).items():
                out.print(_clean(f"    {k}: {v}"), markup=False)
            for other in r.get("also", []):
                out.print(_clean(f"    also matches: {other}"), markup=False)
    if as_json:
        out.print_json(json.dumps(reports))
    if failed:
        raise typer.Exit(1)


@app.command("formats", help="List every registered format.")
def formats_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
):
    from .registry import get_registry

    registry = _run(get_registry, debug)
    rows = [
        {
            "name": f.name,
            "aliases": list(f.aliases),
            "read": f.reader is not None,
            "write": f.missing_for_writing() is None,
            "write_needs": list(f.writer_needs),
            "extensions": list(f.extensions),
            "detect": f.sniff is not None,
            "description": f.description,
            "plugin": f.plugin,
            "distribution": f.distribution,
        }
        for f in registry
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    header = ("format", "read", "write", "detect", "extensions", "aliases", "provided by")
    table = [header] + [
        (r["name"], "yes" if r["read"] else "-", "yes" if r["write"] else "-", "content" if r["detect"] else "name",
         " ".join(r["extensions"]) or "-", " ".join(r["aliases"]) or "-", r["distribution"] or r["plugin"])
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        out.print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), markup=False)
    out.print()
    for r, f in zip(rows, registry):
        out.print(f"  {r['name']}: {r['description']}", markup=False)
        missing = f.missing_for_writing()
        if missing and f.writer is not None:
            out.print(f"      not written here: {missing}", markup=False)


@app.command("plugins", help="List every plugin: distribution, version, entry point, formats, codecs, status.")
def plugins_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
):
    from .registry import get_registry

    registry = _run(get_registry, debug)
    rows = [info.as_dict() for info in sorted(registry.plugins.values(), key=lambda i: (not i.builtin, i.name))]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for r in rows:
        who = "built-in" if r["builtin"] else f"{r['distribution'] or '?'} {r['version']}".strip()
        line = f"{r['name']}  [{who}]  {r['status']}"
        if r["formats"]:
            line += f"  formats: {', '.join(r['formats'])}"
        if r["codecs"]:
            line += f"  codecs: {', '.join(r['codecs'])}"
        if r["conflicts"]:
            line += f"  conflicts: {'; '.join(r['conflicts'])}"
        if r["error"]:
            line += f"  ({r['error']})"
        out.print(line, markup=False)


# -- convert migrate (the engine is converter/migrate.py) --------------------------------------

@app.command("migrate", help="Convert every store under SRC_DIR to the same path under DEST_DIR, verify each, "
             "and write DEST_DIR/migration-report.json; a rerun resumes. Exit 0 only if every store converted and verified.")
def migrate_cmd(
    src: Annotated[Path, typer.Argument(metavar="SRC_DIR", readable=False, show_default=False)],
    dest: Annotated[Path, typer.Argument(metavar="DEST_DIR", readable=False, show_default=False)],
    to: Annotated[str, typer.Option("--to", metavar="FORMAT", autocompletion=_complete_formats, help="output format")] = "sqlite",
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", metavar="N", help="worker processes (default: the number of cores; 1: in this process)")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="do not re-read and compare each output")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="redo every store, replacing existing outputs")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan; write nothing")] = False,
    checksum: Annotated[bool, typer.Option("--checksum", help="fingerprint sources by sha256 too, not only size and mtime")] = False,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786); workers must see the same paths")] = None,
    key_codec: Annotated[Optional[str], typer.Option(metavar="CODEC", autocompletion=_complete_codecs, help=f"codec of dbm keys: {_CODECS}")] = None,
    value_codec: Annotated[Optional[str], typer.Option(metavar="CODEC", autocompletion=_complete_codecs, help="codec of dbm values")] = None,
    py2_strings: Annotated[str, typer.Option(metavar="MODE", autocompletion=_completer("utf8", "latin1", "bytes"), help="Python 2 byte strings: utf8, latin1, bytes")] = "utf8",
    allow: Annotated[Optional[list[str]], typer.Option(metavar="MODULE.NAME", help="allow one more global in pickles (repeatable)")] = None,
    trust: Annotated[bool, typer.Option("--trust", help="unpickle with the full unpickler: RUNS CODE from the inputs")] = False,
    budget: Annotated[Optional[str], typer.Option(metavar="LIMITS", help="raise resource limits for trusted inputs (see README)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display or summary table (errors are still printed)")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
):
    if jobs is not None and jobs < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--jobs")
    options = _run(lambda: Options(key_codec=key_codec, value_codec=value_codec, py2_strings=py2_strings,
                                   allow=tuple(allow or ()), trust=trust, budget=_budget_option(budget)), debug)
    from .migration import REPORT_NAME, MigrationError, migrate, succeeded

    if trust and not quiet:
        err.print("warning: --trust unpickles with the full unpickler, which runs any code in the inputs", markup=False)

    def work(on_event=None):
        try:
            return migrate(src, dest, to=to, jobs=jobs, verify=not no_verify, force=force, dry_run=dry_run,
                           checksum=checksum, scheduler=scheduler, options=options, on_event=on_event)
        except MigrationError as exc:  # SRC not a directory, DEST inside SRC: a usage error
            _fail(exc, debug, 2)
        except KeyboardInterrupt:
            if debug:
                raise
            report_path = Path(dest) / REPORT_NAME
            if dry_run or not report_path.exists():
                err.print("convert: interrupted while planning; nothing was written", markup=False)
            else:
                err.print(f"convert: interrupted; finished stores are in {_clean(report_path)}, "
                          f"and a rerun resumes; nothing is half-written", markup=False)
            raise typer.Exit(130) from None

    if quiet or dry_run or not err.is_terminal:
        report = _run(work, debug)
    else:
        with _migrate_progress() as on_event:
            report = _run(lambda: work(on_event), debug)
    if dry_run:
        _print_plan(report)
        if report["unreadable"] or any(p["action"] == "refuse" for p in report["plan"]):
            raise typer.Exit(1)  # what the real run would fail on
        return
    _print_migration(report, quiet=quiet)
    if not succeeded(report):
        raise typer.Exit(1)


@contextlib.contextmanager
def _migrate_progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("migrating"), BarColumn(), MofNCompleteColumn(), TextColumn("stores"),
                  TextColumn("{task.fields[records]:,} records"), TimeElapsedColumn(),
                  console=err.rich, transient=True) as bar:
        task = bar.add_task("stores", total=None, records=0)

        def on_event(kind, data):
            if kind == "plan":
                bar.update(task, total=sum(1 for p in data["plan"] if p["action"] != "skip"))
            elif kind == "done":
                bar.update(task, advance=1, records=bar.tasks[0].fields["records"] + (data.get("records") or 0))

        yield on_event


def _print_plan(report):
    for p in report["plan"]:
        if p["action"] == "convert":
            why = "" if p.get("why", "new") == "new" else f"  ({p['why']})"
            out.print(_clean(f"convert  {p['store']} ({p['format']}) -> {p['output']}{why}"), markup=False)
        elif p["action"] == "refuse":
            out.print(_clean(f"refuse   {p['store']} ({p['format']}) -> {p['output']}: {p['why']}"), markup=False)
        else:
            out.print(_clean(f"skip     {p['store']}: {p['why']}"), markup=False)
    for d in report["not_data"]:
        out.print(_clean(f"not data {d['path']}: {d['reason']}"), markup=False)
    for d in report["unreadable"]:
        out.print(_clean(f"unreadable {d['path']}: {d['error']}"), markup=False)
    s = report["summary"]
    refused = sum(1 for p in report["plan"] if p["action"] == "refuse")
    err.print(f"dry run: {s['converted']} store(s) to convert, {s['up_to_date']} up to date, "
              + (f"{refused} refused, " if refused else "")
              + f"{s['not_data']} file(s) not data, {s['unreadable']} unreadable; nothing was written", markup=False)


def _print_migration(report, limit=40, quiet=False):
    """The summary table, a line per failure, the totals; with ``quiet``, the failures only."""
    stores = report["stores"]
    failed = [e for e in stores if e["status"] != "ok"]
    shown = [] if quiet else stores if len(stores) <= limit else failed[:limit]
    if shown:
        from rich.table import Table

        table = Table(title=f"migration of {_clean(report['source'])}", show_lines=False)
        for col, just in (("store", "left"), ("format", "left"), ("records", "right"), ("verify", "left"),
                          ("seconds", "right"), ("result", "left")):
            table.add_column(col, justify=just, overflow="fold")
        for e in shown:
            result = "ok" if e["status"] == "ok" else "FAILED (below)"
            table.add_row(_clean(e["store"]), e["format"], "-" if e["records"] is None else f"{e['records']:,}",
                          e["verify"] or "-", "-" if e["seconds"] is None else f"{e['seconds']:.2f}", result)
        err.rich.print(table)
    for e in failed:
        err.print(f"convert: error: {_clean(e['error'] or e['status'])}", markup=False)
    for d in report["unreadable"]:
        err.print(f"convert: error: {_clean(d['error'])}", markup=False)
    if quiet:
        return
    s = report["summary"]
    err.print(f"{s['ok']} of {s['stores']} store(s) ok ({s['converted']} converted this run, {s['up_to_date']} up to "
              f"date), {s['failed']} failed, {s['unreadable']} unreadable, {s['not_data']} file(s) not data, "
              f"{s['records']:,} record(s); report: {_clean(Path(report['dest']) / 'migration-report.json')}",
              markup=False)


class _RateColumn:
    """records/s for the progress bar (rich's speed column counts bytes)."""

    def __new__(cls):
        from rich.progress import ProgressColumn
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task):
                return Text(f"{task.speed:,.0f} records/s" if task.speed else "")

        return Rate()


class _ShareColumn:
    """The percentage done and the time left, where the total is known (nothing otherwise)."""

    def __new__(cls):
        from rich.progress import ProgressColumn
        from rich.text import Text

        class Share(ProgressColumn):
            def render(self, task):
                if not task.total:
                    return Text("")
                left = task.time_remaining
                eta = f", {int(left) // 60}:{int(left) % 60:02d} left" if left is not None else ""
                return Text(f"{min(task.percentage, 100):.0f}%{eta}")

        return Share()


class _Closed(io.TextIOBase):
    """Stands for a standard stream the shell closed (``>&-``): writing to it is an OSError that
    the error policy words, instead of an AttributeError on None."""

    def writable(self):
        return True

    def write(self, text):
        raise OSError(errno.EBADF, "it is closed")

    @property
    def buffer(self):
        return self

    def fileno(self):
        raise OSError(errno.EBADF, "it is closed")


def main():
    if sys.stdout is None:
        sys.stdout = _Closed()
    if sys.stderr is None:
        sys.stderr = _Closed()
    try:
        try:
            app(prog_name="convert")
        except SystemExit as exc:
            if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
                _broken_pipe()  # click met the broken pipe itself (printing --help) and says 1
            raise
        finally:
            if not isinstance(sys.stdout, _Closed):
                sys.stdout.flush()  # here, not at exit, so that a failure is worded like the rest
    except OSError as exc:  # printing a listing into `| head`, or onto a full disk
        if "--debug" in sys.argv[1:]:
            raise  # any OSError let through for its traceback is not (only) standard output's
        sys.exit(_policy_code(exc, "standard output: "))
