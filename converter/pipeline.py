"""Source -> records -> sink, one record at a time, written under a temporary name and renamed
into place only after success."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import budget as _budget
from .codecs import decode_records, encode_records
from .detect import detect_input, detect_output
from .errors import ConverterError, OutputError, UnsupportedValueError
from .options import Options
from .registry import get_registry


@dataclass
class Result:
    records: int
    source_format: str
    sink_format: str
    seconds: float
    overridden: int = 0
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
    records = fmt.reader(path, options)
    if fmt.kv and decode:
        records = decode_records(records, registry, options, str(path), fmt.key_codec, fmt.value_codec)
    return iter(records)


def read_records(src, *, from_: str | None = None, options: Options | None = None, registry=None) -> Iterator[tuple]:
    """Iterate the (key, value) records of ``src`` (format detected unless ``from_`` names it)."""
    registry = registry or get_registry()
    options = options or Options()
    path = _as_path(src)
    fmt, _ = detect_input(path, registry, from_)
    if fmt.reader is None:
        raise ConverterError(f"{path}: format {fmt.name} cannot be read")
    records = iter_source(path, fmt, options, registry)
    return _within(options.budget, records, path)


def _within(budget, records, path):
    with _budget.using(budget):
        try:
            yield from records
        except _budget.BudgetError as exc:
            raise _budget.naming(exc, path) from None


_TOKEN_KEY = os.urandom(16)
_DIGESTED = object()


def _key_token(key):
    """What the repeated-key index holds for ``key``: str and bytes as they are (their hashes
    are keyed per process, so they cannot be flooded), anything else as a keyed digest of a
    canonical form, so that ints sharing one hash, or deep tuples, cost no more than any other
    key. Equal numbers (1, 1.0, True) give one token, as they are one key in a dict. Raises
    TypeError for an unhashable key."""
    kind = type(key)
    if kind is str or kind is bytes:
        return key
    _budget.check_hashable(key, f"key {_short_repr(key)}")
    hash(key)  # TypeError for an unhashable one (a list inside a tuple)
    digest = hashlib.blake2b(key=_TOKEN_KEY, digest_size=16)
    update = digest.update
    stack = [key]
    while stack:
        x = stack.pop()
        kind = type(x)
        if kind is tuple:
            update(b"(%d:" % len(x))
            stack.extend(reversed(x))
        elif kind is str:
            data = x.encode("utf-8", "surrogatepass")
            update(b"s%d:" % len(data))
            update(data)
        elif kind is bytes:
            update(b"b%d:" % len(x))
            update(x)
        elif kind is float and x.is_integer():
            x = int(x)
            update(b"i" + x.to_bytes(x.bit_length() // 8 + 1, "little", signed=True))
        elif kind is int or kind is bool:
            update(b"i" + x.to_bytes(x.bit_length() // 8 + 1, "little", signed=True))
        else:
            text = repr(x).encode("utf-8", "surrogatepass")
            update(b"r%s:%d:" % (kind.__qualname__.encode(), len(text)))
            update(text)
    return (_DIGESTED, digest.digest())


def _short_repr(key) -> str:
    if type(key) is tuple:
        return f"(a tuple of {len(key)} items)"
    text = repr(key)
    return text if len(text) <= 60 else text[:60] + "..."


class _Counter:
    """Counts records, reports progress, and finds repeated keys for sinks that care."""

    def __init__(self, records, track_keys: bool, policy: str, sink_name: str, on_progress):
        self.records = records
        self.n = 0
        self.overridden = 0
        self.track = track_keys
        self.policy = policy
        self.sink_name = sink_name
        self.seen: set = set()
        self.on_progress = on_progress

    def __iter__(self):
        on_progress, seen, track = self.on_progress, self.seen, self.track
        for record in self.records:
            if track:
                key = record[0]
                try:
                    token = key if type(key) is str else _key_token(key)
                    if token in seen:
                        if self.policy == "error":
                            raise UnsupportedValueError(
                                f"key {key!r} occurs twice, and a {self.sink_name} output cannot hold it twice"
                            )
                        self.overridden += 1
                    else:
                        seen.add(token)
                except TypeError:
                    pass  # unhashable keys cannot repeat in any dict-like source
            self.n += 1
            if on_progress is not None and not self.n % 1000:
                on_progress(self.n)
            yield record


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
    with _budget.using(options.budget):
        try:
            return _convert(src, dst, from_, to, options, registry, on_progress, dry_run)
        except _budget.BudgetError as exc:
            raise _budget.naming(exc, src) from None


def _convert(src, dst, from_, to, options, registry, on_progress, dry_run) -> Result:
    started = time.perf_counter()
    src_path, dst_path = _as_path(src), _as_path(dst)
    source, _ = detect_input(src_path, registry, from_)
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
            if any(_same_file(out, i) or out.resolve() == i.resolve() for i in inputs):
                raise OutputError(f"{out}: the output is the input file; choose another output")
        if not dst_path.parent.is_dir():
            raise OutputError(f"{dst_path.parent}: output directory does not exist")
        existing = [o for o in outputs if o.exists() or o.is_symlink()]
        if existing and not options.force:
            if not dry_run:
                raise OutputError(f"{existing[0]}: output exists; use --force to replace it")
            options.note(f"{existing[0]}: output exists; a real run needs --force")

    passthrough = _passthrough(source, sink, options)
    if passthrough and source.kv:
        options.note(f"{src_path}: keys and values copied as stored bytes")
    records = iter_source(src_path, source, options, registry, decode=not passthrough)
    track = sink.duplicates != "keep" and not source.unique_keys
    counter = _Counter(records, track, sink.duplicates, sink.name, on_progress)
    records = iter(counter)
    if sink.kv and not passthrough:
        records = encode_records(records, registry, options, str(dst_path), sink.key_codec, sink.value_codec)

    if dry_run:
        scratch = Path(tempfile.mkdtemp(prefix="convert-dry-run-"))
        try:
            target = scratch / ("out" if to_stdout else dst_path.name)
            options.display_names[str(target)] = str(dst_path)
            sink.writer(target, records, options)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        outputs = []
    elif to_stdout:
        sink.writer(dst_path, records, options)
        sys.stdout.buffer.flush()
    else:
        _write_atomically(sink, dst_path, records, options)
    if counter.overridden:
        options.note(f"{counter.overridden} key(s) occurred more than once; the later record was kept")
    return Result(
        records=counter.n,
        source_format=source.name,
        sink_format=sink.name,
        seconds=time.perf_counter() - started,
        overridden=counter.overridden,
        outputs=outputs,
        notes=list(options.notes),
    )


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


def _write_atomically(sink, dst: Path, records, options) -> None:
    """Write into a fresh directory beside ``dst`` and rename every file into place at the end.

    Anything that goes wrong (an error, Ctrl-C) removes the temporary directory, so no
    half-written output is ever visible under the output's name.
    """
    _remove_stale_scratch(dst)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{dst.name}.{os.getpid()}.", suffix=".converting", dir=dst.parent))
    options.display_names[str(tmpdir / dst.name)] = str(dst)
    try:
        sink.writer(tmpdir / dst.name, records, options)
        made = sorted(tmpdir.iterdir())
        if not made:
            raise ConverterError(f"{dst}: the {sink.name} writer produced no file")
        if not options.force:
            clash = [dst.parent / m.name for m in made if (dst.parent / m.name).exists()]
            if clash:
                raise OutputError(f"{clash[0]}: output exists; use --force to replace it")
        for m in made:
            os.replace(m, dst.parent / m.name)
    except OSError as exc:
        if exc.errno in _OUT_OF_SPACE:
            raise OutputError(f"{dst}: {_OUT_OF_SPACE[exc.errno]} ({exc.strerror}); nothing was written") from None
        raise
    except ConverterError as exc:
        # errors raised by a writer name the temporary file; name the user's output instead
        text = str(exc).replace(str(tmpdir / dst.name), str(dst))
        if text != str(exc):
            raise type(exc)(text) from exc
        raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
