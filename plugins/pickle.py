"""Pickle files: one or more pickles back to back; the output is one dict."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from converter import Format, hookimpl
from converter.errors import FormatError, UnsupportedValueError
from converter.fileio import open_input, open_output


SNIFF_BYTES = 512  # opcodes walked to recognise a pickle: enough to rule out other files, cheap


def _sniff(head, path):
    from converter.safepickle import pickle_protocol

    # the walk is Python-level per opcode: the whole 4 KiB head cost ~0.8 ms a file, most of
    # `convert migrate`'s planning of a tree of small pickles
    proto = pickle_protocol(head[:SNIFF_BYTES], whole=len(head) <= SNIFF_BYTES)
    return None if proto is None else f"pickle protocol {proto}"


def _read(path, options):
    """Each top-level dict gives its items; any other object is one record keyed by its position.

    A file of several pickles (appended with open(..., 'ab')) is merged like successive
    dict.update calls, so later pickles override earlier keys, and the count is reported.
    A damaged one named NAME.dat with no NAME.dir beside it is more likely a shelve's values
    file whose index was lost (pickles padded to 512-byte blocks): the error says so.
    """
    try:
        yield from _read_pickles(path, options)
    except FormatError as exc:
        from converter.detect import lone_companion

        lone = lone_companion(Path(path), b"") if str(path) != "-" else None
        if lone:
            raise FormatError(f"{exc} ({lone[1]})") from None
        raise


def _read_pickles(path, options):
    from converter.safepickle import iter_pickles

    with open_input(path) as f:
        pickles = iter_pickles(f, name=str(path), **options.pickle_kwargs())
        first = next(pickles, _END)
        if first is _END:
            # pickle.load raises EOFError here too: zero bytes are no pickle, not an empty dict
            raise FormatError(f"{path}: empty file, not a pickle")
        second = next(pickles, _END)
        if second is _END:
            yield from _records(0, first)
            return
        merged: dict = {}
        overridden = 0
        for index, obj in enumerate([first, second]):
            for key, value in _records(index, obj):
                overridden += key in merged
                merged[key] = value
        count = 2
        for index, obj in enumerate(pickles, start=2):
            count += 1
            for key, value in _records(index, obj):
                overridden += key in merged
                merged[key] = value
        options.note(f"{path}: {count} pickles merged; {overridden} key(s) overridden by later pickles")
        yield from merged.items()


_END = object()


def _records(index, obj):
    if type(obj) is dict or isinstance(obj, dict):
        return obj.items()
    return [(index, obj)]


class _Expansion(Exception):
    """A record's shared references expand past the budget (raised inside the C pickler)."""


class _Items:
    """Stands for a dict whose items are produced lazily while pickling (see _StreamingPickler)."""

    def __init__(self, records):
        self.records = records


class _StreamingPickler(pickle.Pickler):
    # Pickling a dict normally needs the whole dict in memory. Reducing _Items to
    # (dict, (), None, None, items) makes the C pickler emit an empty dict and then SETITEMS
    # batches straight from the iterator. ``fast`` mode keeps no memo, so memory stays flat;
    # shared sub-objects are written once per use and cycles are refused.
    # A zoneinfo.ZoneInfo is written as ZoneInfo(key), which the safe unpickler allows (the
    # standard form fetches a classmethod with builtins.getattr, which it must refuse).
    # (The pickler does not call this for str, int, float, bytes, dict, list... : no cost there.)
    def __init__(self, file, protocol):
        super().__init__(file, protocol=protocol)
        self.drops_fold = protocol < 4

    def reducer_override(self, obj):
        t = type(obj)
        if t is _Items:
            return (dict, (), None, None, obj.records)
        if t.__name__ == "ZoneInfo" and t.__module__ == "zoneinfo" and obj.key is not None:
            return (t, (obj.key,))
        if self.drops_fold and t.__module__ == "datetime" and t.__name__ in ("datetime", "time") and obj.fold:
            raise _FoldLost(obj)
        return NotImplemented


class _FoldLost(Exception):
    """A datetime or time with fold=1 met by a pickler of protocol 0-3, which would drop the fold."""

    def message(self, protocol: int) -> str:
        return (f"{self.args[0]!r} has fold=1 (the second of two equal wall-clock times), which pickle "
                f"protocol {protocol} drops (protocols 0-3 keep no fold); use --pickle-protocol 4 or 5")


def dumps(value, protocol: int) -> bytes:
    """pickle.dumps, except that protocols 0-3 refuse what they would silently change (a fold)."""
    if protocol >= 4:
        return pickle.dumps(value, protocol=protocol)
    buf = io.BytesIO()
    try:
        _StreamingPickler(buf, protocol).dump(value)
    except _FoldLost as exc:
        raise UnsupportedValueError(exc.message(protocol)) from None
    return buf.getvalue()


# Writing shared sub-objects once per use lets a tiny pickle expand without bound (a list of
# 10 references to a list of 10 references... 12 levels: 10**12 items), so a record's shared
# containers are counted against the same budget as JSON output (budget.py's shared).
# Protocols 4 and 5 write 64 KiB frames to the file as they go: only a record whose pickle
# grows past CHECK_BYTES is walked to count them, so the usual record costs nothing. Protocols
# 0-3 have no frames (the C pickler writes everything at the end), so there every record that
# nests containers is checked first, quickly when nothing in it is met twice.

CHECK_BYTES = 4 * 2**20
_FLAT = frozenset((str, int, float, bool, type(None), bytes))
_NESTING = {dict: dict.values, list: iter, tuple: iter, set: iter, frozenset: iter}


class _Watched:
    """The output file, counting what each record writes (see CHECK_BYTES)."""

    def __init__(self, file):
        self.file = file
        self.written = self.start = 0
        self.recent = ()
        self.checked = True

    def write(self, data):
        self.written += len(data)
        if not self.checked and self.written - self.start > CHECK_BYTES:
            self.checked = True
            for key, value in self.recent:
                _check_expansion(key, value)
        return self.file.write(data)

    def records(self, records):
        # the C pickler fetches the next record before it writes the first of each batch:
        # the one being written is one of the last two fetched
        last = None
        for record in records:
            self.recent = (last, record) if last is not None else (record,)
            self.start, self.checked, last = self.written, False, record
            yield record


def _checked_first(records):
    for record in records:
        value = record[1]
        if type(value) in _NESTING and not _unshared(value, {id(value)}, 0):
            _check_expansion(record[0], value)
        yield record


def _unshared(obj, seen, depth):
    """True if no container below ``obj`` is met twice (and nesting stays shallow): the quick
    answer for the usual record; anything else gets the budgeted walk."""
    flat = _FLAT
    if type(obj) is dict:
        if flat.issuperset(map(type, obj.values())) and flat.issuperset(map(type, obj)):
            return True  # checked at C speed: the usual record
        items = [*obj, *obj.values()]
    elif flat.issuperset(map(type, obj)):
        return True
    else:
        items = obj
    for x in items:
        kind = type(x)
        if kind in flat or kind not in _NESTING:
            continue
        if depth > 40:
            return False
        n = len(seen)
        seen.add(id(x))
        if len(seen) == n or not _unshared(x, seen, depth + 1):
            return False
    return True


def _check_expansion(key, value):
    """Raise _Expansion if the value's shared containers repeat more items than the budget allows.

    Walks the value as fast-mode pickling does (a shared container once per use), so the walk
    itself stops within the budget. A cycle is left for the pickler to refuse.
    """
    from converter.budget import SHARED_FACTOR, active
    from converter.jsontags import expansion_message

    limit = active().shared
    limit = float("inf") if limit is None else limit
    seen, active = set(), set()
    distinct = repeated = 0
    stack = [(value, False)]
    while stack:
        obj, leaving = stack.pop()
        if leaving:
            active.discard(id(obj))
            continue
        children = _NESTING.get(type(obj))
        if children is None or id(obj) in active:
            continue
        if id(obj) in seen:
            repeated += len(obj)
            if repeated > limit and repeated > SHARED_FACTOR * distinct:
                raise _Expansion(expansion_message(f"record {key!r}", distinct, repeated))
        else:
            seen.add(id(obj))
            distinct += len(obj)
        active.add(id(obj))
        stack.append((obj, True))
        if type(obj) is dict:
            stack.extend((x, False) for x in obj if type(x) not in _FLAT)
        stack.extend((x, False) for x in children(obj) if type(x) not in _FLAT)


def _write(path, records, options):
    protocol = options.pickle_protocol
    if not 0 <= protocol <= pickle.HIGHEST_PROTOCOL:
        raise UnsupportedValueError(f"pickle protocol {protocol} is not one of 0..{pickle.HIGHEST_PROTOCOL}")
    with open_output(path) as f:
        if protocol >= 4:
            f = _Watched(f)
            records = f.records(records)
        else:
            records = _checked_first(records)
        pickler = _StreamingPickler(f, protocol)
        pickler.fast = True
        try:
            pickler.dump(_Items(records))
        except _Expansion as exc:
            raise UnsupportedValueError(f"{path}: {exc}") from None
        except _FoldLost as exc:
            raise UnsupportedValueError(f"{path}: {exc.message(protocol)}") from None
        except RecursionError:
            raise UnsupportedValueError(f"{path}: a value is nested too deeply to pickle") from None
        except (pickle.PicklingError, ValueError, TypeError, AttributeError) as exc:
            if "cyclic" in str(exc):
                raise UnsupportedValueError(f"{path}: a value refers to itself (a cycle); pickle output is written without a memo and cannot hold it") from None
            raise UnsupportedValueError(f"{path}: cannot pickle a value: {exc}") from None


_DESCRIBE_LIMIT = 16 * 2**20  # count records only where it is cheap


def _describe(path, options):
    from converter.safepickle import load, pickle_protocol

    details = {"size": f"{path.stat().st_size:,} bytes"}
    if path.stat().st_size > _DESCRIBE_LIMIT:
        return details
    pickles = records = 0
    protocols = []
    with open(path, "rb") as f:
        try:
            while True:
                start = f.tell()
                head = f.read(16)
                if not head:
                    break
                f.seek(start)
                protocols.append(pickle_protocol(head))
                obj = load(f, what=f"pickle #{pickles + 1} of {path}", **options.pickle_kwargs())
                pickles += 1
                records += len(obj) if isinstance(obj, dict) else 1
        except Exception as exc:  # identify reports what it can; the problem is part of the answer
            details["problem"] = str(exc)
    details["pickles"] = pickles
    details["protocols"] = ", ".join(str(p) for p in protocols)
    details["records"] = records
    return details


@hookimpl
def register_formats(register):
    register(Format(
        name="pickle",
        unique_keys=True,
        description="Python pickle (any protocol; several appended pickles are merged)",
        aliases=("cPickle", "pkl"),
        extensions=(".pkl", ".pickle", ".pck", ".p"),
        sniff=_sniff,
        reader=_read,
        writer=_write,
        stream=True,
        describe=_describe,
    ))
