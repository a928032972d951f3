"""Pickle files: one or more pickles back to back; the output is one dict."""

from __future__ import annotations

import pickle

from converter import Format, hookimpl
from converter.errors import UnsupportedValueError
from converter.fileio import open_input, open_output


def _sniff(head, path):
    from converter.safepickle import pickle_protocol

    proto = pickle_protocol(head)
    return None if proto is None else f"pickle protocol {proto}"


def _read(path, options):
    """Each top-level dict gives its items; any other object is one record keyed by its position.

    A file of several pickles (appended with open(..., 'ab')) is merged like successive
    dict.update calls, so later pickles override earlier keys, and the count is reported.
    """
    from converter.safepickle import iter_pickles

    with open_input(path) as f:
        pickles = iter_pickles(f, name=str(path), **options.pickle_kwargs())
        first = next(pickles, _END)
        if first is _END:
            return
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


class _Items:
    """Stands for a dict whose items are produced lazily while pickling (see _StreamingPickler)."""

    def __init__(self, records):
        self.records = records


class _StreamingPickler(pickle.Pickler):
    # Pickling a dict normally needs the whole dict in memory. Reducing _Items to
    # (dict, (), None, None, items) makes the C pickler emit an empty dict and then SETITEMS
    # batches straight from the iterator. ``fast`` mode keeps no memo, so memory stays flat;
    # shared sub-objects are written once per use and cycles are refused.
    def reducer_override(self, obj):
        if type(obj) is _Items:
            return (dict, (), None, None, iter(obj.records))
        return NotImplemented


def _write(path, records, options):
    protocol = options.pickle_protocol
    if not 0 <= protocol <= pickle.HIGHEST_PROTOCOL:
        raise UnsupportedValueError(f"pickle protocol {protocol} is not one of 0..{pickle.HIGHEST_PROTOCOL}")
    with open_output(path) as f:
        pickler = _StreamingPickler(f, protocol=protocol)
        pickler.fast = True
        try:
            pickler.dump(_Items(records))
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
