"""Source -> records -> sink, one record at a time, written under a temporary name and renamed
into place only after success."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from itertools import islice
from operator import length_hint
from pathlib import Path
from typing import Callable, Iterator

from . import budget as _budget
from .codecs import decode_records, encode_records
from .detect import detect_input, detect_output
from .fileio import data_stdout, stdout_buffer
from .errors import ConverterError, FormatError, OutputError, RepeatedKey, UnsupportedValueError, restart_in
from .options import Options
from .registry import get_registry


@dataclass
class Result:
    records: int
    source_format: str
    sink_format: str
    seconds: float
    overridden: int = 0  # keys that occurred more than once
    kept_every_record: bool = False  # ... and the output kept them all (JSON's $records pairs)
    outputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _as_path(p) -> Path:
    return p if isinstance(p, Path) else Path(os.fspath(p))


def _passthrough(source, sink, options) -> bool:
    """Copy stored bytes unchanged between two key-value stores when no codec was asked for."""
    return (
        source.kv and sink.kv and not options.key_codec and not options.value_codec
        and (source.key_codec, source.value_codec) == (sink.key_codec, sink.value_codec)
    )


def iter_source(path, fmt, options, registry, decode=True) -> Iterator[tuple]:
    records = fmt.reader(path, options)  # a plugin's reader is guarded where it registered (guard.py)
    if fmt.kv and str(path) != "-":  # stored bytes cannot pass the files' size unless records overlap
        records = _budget.stored_bytes(records, path, _size(fmt.parts(path)))
    if fmt.kv and decode:
        records = decode_records(records, registry, options, str(path), fmt.key_codec, fmt.value_codec)
    return iter(records)


def read_records(src, *, from_: str | None = None, options: Options | None = None, registry=None,
                 flag: str | None = "--from") -> Iterator[tuple]:
    """Iterate the (key, value) records of ``src`` (format detected unless ``from_`` names it).

    ``flag``: the option a detection error advises (the caller's name for ``from_``).
    """
    registry = registry or get_registry()
    options = options or Options()
    check_codec_names(options, registry)
    path = _as_path(src)
    fmt, _ = detect_input(path, registry, from_, flag)
    if fmt.reader is None:
        raise ConverterError(f"{path}: format {fmt.name} cannot be read")
    records = iter_source(path, fmt, options, registry)
    return _within(options.budget, records, path)


def check_codec_names(options: Options, registry) -> None:
    """--key-codec/--value-codec name codecs of the registry: a misspelt one is a usage error at
    once, even where the conversion would not have needed a codec."""
    for name in (options.key_codec, options.value_codec):
        if name is not None:
            registry.codec(name)


def _within(budget, records, path):
    with _budget.using(budget):
        try:
            yield from records
        except _budget.BudgetError as exc:
            raise _budget.naming(exc, path) from None


MAX_ATTEMPTS = 8  # conversions started again with a choice changed, at most


def with_restarts(attempt, options, restartable: bool, what: str):
    """Run ``attempt()``; while a choice made from the first records does not fit a later one
    (``errors.Restart``: a codec, a dict-shaped output), change it and run again from the start.

    ``restartable``: the source can be read again and nothing of the attempt has left the
    process (a file, not stdin; a scratch directory, not stdout).
    """
    for _ in range(MAX_ATTEMPTS):
        try:
            return attempt()
        except ConverterError as exc:
            restart = restart_in(exc)
            if restart is None or not restartable or not restart.apply(options):
                raise
            options.note(restart.note())
    raise ConverterError(f"{what}: the choices changed {MAX_ATTEMPTS} times; "
                         f"pick the codecs with --key-codec/--value-codec")


class _Counter:
    """Counts records, reports progress, and finds repeated keys for outputs that cannot hold them.

    Every source is checked (a format's claim that its keys are unique is not trusted: crafted
    and merely unusual files repeat keys anyway), through a ``KeySet`` of 64-bit fingerprints,
    never the keys themselves. ``exact_bytes``: the keys are a key/value store's stored bytes.
    """

    def __init__(self, records, track_keys: bool, policy: str, sink_name: str, on_progress, options,
                 dst: str, exact_bytes: bool = False):
        self.records = records
        self.n = 0
        self.overridden = 0  # records whose key came before: "override" (later wins) or kept as pairs
        self.track = track_keys
        self.policy = policy
        self.sink_name = sink_name
        self.on_progress = on_progress
        self.options = options
        self.dst = dst
        self.exact_bytes = exact_bytes
        self.finished = False  # every record was taken from this iterator
        self._batch = iter(())  # the batch being yielded: what is left of it was not taken

    @property
    def taken(self) -> int:
        """Records the consumer took, exactly (``n`` counts whole batches)."""
        return self.n - length_hint(self._batch)

    BATCH = 1000  # records whose keys are checked together

    def __iter__(self):
        on_progress, track, batch_size = self.on_progress, self.track, self.BATCH
        if track:
            from .keyset import KeySet

            seen = KeySet(exact_bytes=self.exact_bytes)
        records = iter(self.records)
        try:
            while True:
                batch = list(islice(records, batch_size))
                if not batch:
                    if track:
                        self._repeat(_COUNTED, seen.finish())
                    self.finished = True
                    return
                if track:
                    for i in seen.add_batch([r[0] for r in batch]):
                        self._repeat(batch[i][0])
                before = self.n
                self.n += len(batch)
                if on_progress is not None and self.n // 1000 != before // 1000:
                    on_progress(self.n)
                self._batch = iter(batch)
                yield from self._batch
        finally:
            if track:
                seen.close()

    def _repeat(self, key, n: int = 1):
        """``n`` records whose key came before: ``key`` is the one met, or ``_COUNTED`` for the
        repeats a large store's ``KeySet`` could only count at the end of the stream."""
        if not n:
            return
        counted = key is _COUNTED
        which = f"{n:,} key(s) occur" if counted else f"key {key!r} occurs"
        if self.policy == "error":
            raise UnsupportedValueError(f"{which} twice, and a {self.sink_name} output cannot hold "
                                        f"{'a key' if counted else 'it'} twice")
        if self.policy == "pairs" and not self.options.keep_pairs:
            raise RepeatedKey(
                f"{self.dst}: {which} twice, and a {self.sink_name} object holds a key once; "
                f"write JSON Lines (.jsonl) from a stream, or give a file that can be read twice",
                store=self.dst, key=None if counted else key)
        self.overridden += n


_COUNTED = object()  # _Counter._repeat: a repeat counted at the end, its key unknown

def _size(parts) -> int:
    """The bytes of a store's files (those that exist)."""
    return sum(st[2] for st in _stats(list(parts)) if st is not None)


def _stats(parts: list[Path]) -> list:
    out = []
    for p in parts:
        try:
            st = os.stat(p)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return out


def _named_only(exc: FormatError, path: Path, fmt, reason: str, produced: list) -> FormatError:
    """A source that gave no record and was taken for ``fmt`` only by its name: say so, and what it is."""
    if produced[0] or not reason.startswith("extension") or str(path) == "-":
        return exc
    from .detect import looks_like, read_head

    try:
        hint = looks_like(read_head(path))
    except ConverterError:
        hint = ""
    text = str(exc)
    prefix = f"{path}: "
    detail = text[len(prefix):] if text.startswith(prefix) else text
    return FormatError(f"{path}: not {fmt.name}{' (' + hint + ')' if hint else ''}; only its name says "
                       f"{fmt.name}: {detail}")


def _unchanged(records, parts: list[Path], before: list, produced: list):
    """The records, then a check that no file of the source changed while it was read.

    A store that a program writes while it is converted can give records from several states
    (or none it ever held), so a change of size, modification time or inode is an error, raised
    before the writer finishes: nothing is written.
    """
    for record in records:
        produced[0] += 1
        yield record
    produced[1] = True
    after = _stats(parts)
    for p, b, a in zip(parts, before, after):
        if a != b:
            raise FormatError(f"{p}: changed while it was read (another program wrote it); nothing was written; "
                              f"convert it again when nothing writes it")


def _real(path: Path) -> str:
    return os.path.realpath(path)  # unlike Path.resolve, a symlink loop is no error here


def _check_output_place(parent: Path) -> None:
    """The output's directory exists and this process may create files in it (checked before
    anything is read, so a long conversion does not fail at its end; a dry run says it too)."""
    if not parent.is_dir():
        if parent.exists():
            raise OutputError(f"{parent}: not a directory, so the output cannot be made inside it")
        raise OutputError(f"{parent}: output directory does not exist")
    try:
        writable = os.access(parent, os.W_OK | os.X_OK)
    except OSError:
        writable = True  # let the write itself say why
    if not writable:
        why = "the file system is read-only" if _read_only_fs(parent) else "permission denied"
        raise OutputError(f"{parent}: cannot create the output in this directory ({why})")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def _check_replaceable(out: Path) -> None:
    """An existing output is a regular file (or a symlink, which --force replaces, never its
    target): the new output is renamed over it, and a device or directory must never be replaced."""
    try:
        mode = os.lstat(out).st_mode
    except OSError:
        return
    for test, kind in _NOT_REGULAR:
        if test(mode):
            hint = "; write to - and redirect to it instead" if kind.endswith(("device", "FIFO")) else ""
            raise OutputError(f"{out}: the output is {kind}, not a regular file, and is never replaced{hint}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def convert(
    src,
    dst,
    *,
    from_: str | None = None,
    to: str | None = None,
    options: Options | None = None,
    registry=None,
    on_progress: Callable[[int], None] | None = None,
    dry_run: bool = False,
    **option_fields,
) -> Result:
    """Convert ``src`` to ``dst``. Keyword options are ``Options`` fields (``force=True`` ...).

    ``dry_run``: read everything and run the real writer into a scratch directory, so every
    refusal and every reported change happens, but nothing appears at ``dst``.
    """
    registry = registry or get_registry()
    if options is None:
        options = Options(**option_fields)
    else:
        for k, v in option_fields.items():
            setattr(options, k, v)
    # to stdout: Python-level stdout is stderr for the run, so a plugin's print() (in its sniff,
    # reader or writer) cannot corrupt the data; the writer gets the real stdout (fileio)
    to_stdout = data_stdout() if str(dst) == "-" else contextlib.nullcontext()
    with _budget.using(options.budget), to_stdout:
        try:
            return _convert(src, dst, from_, to, options, registry, on_progress, dry_run)
        except _budget.BudgetError as exc:
            raise _budget.naming(exc, src) from None


def _convert(src, dst, from_, to, options, registry, on_progress, dry_run) -> Result:
    started = time.perf_counter()
    check_codec_names(options, registry)
    src_path, dst_path = _as_path(src), _as_path(dst)
    source, source_reason = detect_input(src_path, registry, from_)
    sink, _ = detect_output(dst_path, registry, to)
    if source.reader is None:
        raise ConverterError(f"{src_path}: format {source.name} cannot be read")
    if sink.writer is None:
        raise ConverterError(f"{dst_path}: format {sink.name} cannot be written")
    to_stdout = str(dst_path) == "-"
    if str(src_path) == "-" and not source.stream:
        raise ConverterError(f"format {source.name} cannot be read from stdin")
    if to_stdout and not sink.stream:
        raise ConverterError(f"format {sink.name} cannot be written to stdout")

    outputs = [] if to_stdout else sink.parts(dst_path)
    if not to_stdout:
        inputs = source.parts(src_path) if str(src_path) != "-" else []
        for out in outputs:
            if any(_same_file(out, i) or _real(out) == _real(i) for i in inputs):
                raise OutputError(f"{out}: the output is the input file; choose another output")
        _check_output_place(dst_path.parent)
        for out in outputs:
            _check_replaceable(out)
        existing = [o for o in outputs if o.exists() or o.is_symlink()]
        if existing and not options.force:
            if not dry_run:
                raise OutputError(f"{existing[0]}: output exists; use --force to replace it")
            options.note(f"{existing[0]}: output exists; a real run needs --force")

    passthrough = _passthrough(source, sink, options)
    if passthrough and source.kv:
        options.note(f"{src_path}: keys and values copied as stored bytes")

    produced = [0, False]  # records the source gave (before an error), and whether it gave them all

    def attempt():
        produced[0], produced[1] = 0, False
        parts = source.parts(src_path) if str(src_path) != "-" else []
        before = _stats(parts)
        records = _unchanged(iter_source(src_path, source, options, registry, decode=not passthrough), parts, before,
                             produced)
        if sink.kv and not passthrough:
            records = encode_records(records, registry, options, str(dst_path), sink.key_codec, sink.value_codec)
        # repeats are found where the output would merge keys: its stored bytes for a key/value store
        counter = _Counter(records, sink.duplicates != "keep", sink.duplicates, sink.name, on_progress, options,
                           str(dst_path), exact_bytes=sink.kv)
        records = iter(counter)
        def consumed():  # the writer's side of the contract: every record taken
            if not counter.finished:
                who = "" if sink.builtin else f" of plugin {sink.plugin!r} ({sink.distribution or '?'})"
                raise ConverterError(f"{dst_path}: the {sink.name} writer{who} returned before taking every "
                                     f"record ({counter.taken:,} taken); nothing was written")

        if dry_run:
            scratch = Path(tempfile.mkdtemp(prefix="convert-dry-run-"))
            try:
                target = scratch / ("out" if to_stdout else dst_path.name)
                options.display_names[str(target)] = str(dst_path)
                with _named_as(target, dst_path):
                    sink.writer(target, records, options)
                consumed()
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        elif to_stdout:
            try:
                sink.writer(dst_path, records, options)
                stdout_buffer().flush()
            except OSError as exc:
                if exc.filename is None and not isinstance(exc, BrokenPipeError):
                    exc.filename = "standard output"
                raise
            consumed()
        else:
            _write_atomically(sink, dst_path, records, options, before_commit=consumed)
        return counter

    # stdout cannot take a second attempt back, nor stdin give its records again
    restartable = str(src_path) != "-" and not to_stdout
    try:
        counter = with_restarts(attempt, options, restartable, f"converting {src_path}")
    except FormatError as exc:
        raise _named_only(exc, src_path, source, source_reason, produced) from exc
    if dry_run:
        outputs = []
    kept = bool(counter.overridden and options.keep_pairs and sink.duplicates == "pairs")
    if kept:
        options.note(f"{counter.overridden} key(s) occurred more than once; every record was kept, as pairs")
    elif counter.overridden:
        options.note(f"{counter.overridden} key(s) occurred more than once; the later record was kept")
    return Result(
        records=counter.n,
        source_format=source.name,
        sink_format=sink.name,
        seconds=time.perf_counter() - started,
        overridden=counter.overridden,
        kept_every_record=kept,
        outputs=outputs,
        notes=list(options.notes),
    )


def _who(fmt) -> str:
    from .guard import who

    return who(fmt.plugin, fmt.distribution)


def _remove_stale_scratch(dst: Path) -> None:
    """Remove scratch directories that a killed conversion (SIGKILL, power loss) left beside ``dst``.

    Their names carry the writer's pid; a directory whose process is gone is removed, one whose
    process still runs (a concurrent conversion to the same output) is left alone.
    """
    prefix = f".{dst.name}."
    try:
        entries = list(os.scandir(dst.parent))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".converting") and entry.is_dir(follow_symlinks=False)):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass  # alive but not ours to signal


_OUT_OF_SPACE = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
                 errno.EFBIG: "the file-size limit was reached (ulimit -f)"}


def _write_atomically(sink, dst: Path, records, options, before_commit=None) -> None:
    """Write into a fresh directory beside ``dst`` and rename every file into place at the end.

    Anything that goes wrong (an error, Ctrl-C) removes the temporary directory, so no
    half-written output is ever visible under the output's name.
    """
    _remove_stale_scratch(dst)
    try:
        tmpdir = Path(tempfile.mkdtemp(prefix=f".{dst.name}.{os.getpid()}.", suffix=".converting", dir=dst.parent))
    except OSError as exc:
        raise OutputError(f"{dst.parent}: cannot create the output in this directory ({exc.strerror})") from None
    options.display_names[str(tmpdir / dst.name)] = str(dst)
    try:
        with _named_as(tmpdir / dst.name, dst):
            sink.writer(tmpdir / dst.name, records, options)
        if before_commit is not None:
            before_commit()
        made = sorted(tmpdir.iterdir())
        by = "" if sink.builtin else f" of {_who(sink)}"
        if not made:
            raise ConverterError(f"{dst}: the {sink.name} writer{by} produced no file")
        if sink.files is None and (tmpdir / dst.name).is_dir() and not (tmpdir / dst.name).is_symlink():
            # a single-file format's output must be a file: a directory there would be taken as
            # the output (and an input detected later would be read from inside it)
            raise ConverterError(f"{dst}: the {sink.name} writer{by} made a directory, not a file")
        if not options.force:
            clash = [dst.parent / m.name for m in made if (dst.parent / m.name).exists()]
            if clash:
                raise OutputError(f"{clash[0]}: output exists; use --force to replace it")
        for m in made:
            os.replace(m, dst.parent / m.name)
    except OSError as exc:
        if exc.errno in _OUT_OF_SPACE:
            raise OutputError(f"{dst}: {_OUT_OF_SPACE[exc.errno]} ({exc.strerror}); nothing was written") from None
        scratch = str(tmpdir)
        if any(str(n).startswith(scratch) for n in (exc.filename, exc.filename2) if n is not None):
            # the scratch directory is ours, not the user's: name the output (a rename over it failed)
            raise OutputError(f"{dst}: cannot replace the output ({exc.strerror}); nothing was written") from None
        raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@contextlib.contextmanager
def _named_as(scratch: Path, dst: Path):
    """A writer's errors name the scratch file it was given; make them name the user's output."""
    try:
        yield
    except ConverterError as exc:  # renamed in place: a Restart keeps its state
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (exc.args[0].replace(str(scratch), str(dst)), *exc.args[1:])
        raise
    except OSError as exc:
        if exc.filename is not None and str(exc.filename).startswith(str(scratch)):
            exc.filename = str(dst) + str(exc.filename)[len(str(scratch)):]
        raise
