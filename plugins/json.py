"""JSON and JSON Lines.

JSON output is lossless by default: values JSON cannot hold are written as tagged objects
(see ``converter.jsontags``); ``--json-style plain`` writes ordinary JSON and reports each
change. An output whose record keys are 0, 1, 2... is an array, string keys make an object,
and any other keys make the tagged form ``{"$dict": [[key, value], ...]}``.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter

from converter import Format, hookimpl
from converter.errors import FormatError, ShapeMismatch, UnsupportedValueError
from converter.fileio import open_input, open_output

_BOM = b"\xef\xbb\xbf"
RECORDS_TAG = "$records"  # the document form that keeps repeated keys: {"$records": [[k, v], ...]}
SAMPLE = 1000


def _strip(head: bytes) -> bytes:
    if head.startswith(_BOM):
        head = head[3:]
    return head.lstrip(b" \t\r\n")


def _first_line_value(head: bytes):
    """The parsed first line of ``head`` if it is a complete JSON value, else None."""
    line, newline, rest = head.partition(b"\n")
    if not newline:
        return None
    try:
        json.loads(line)
    except ValueError:
        return None
    return rest


_OBJECT_NEXT = frozenset(b'"}')
_ARRAY_NEXT = frozenset(b'[]{"-0123456789tfnNI')


def _sniff_json(head, path):
    body = _strip(head)
    after = body[1:].lstrip(b" \t\r\n")[:1]
    if body[:1] == b"{" and (not after or after[0] in _OBJECT_NEXT):
        return "JSON object"
    if body[:1] == b"[" and (not after or after[0] in _ARRAY_NEXT):
        return "JSON array"
    return None


_JSONL_EXTENSIONS = (".jsonl", ".ndjson")


def _sniff_jsonl(head, path):
    body = _strip(head)
    if body[:1] not in (b"{", b"["):
        return None
    if b"\n" not in body and len(head) >= 4096 and str(path).lower().endswith(_JSONL_EXTENSIONS):
        # the first line is longer than the sniff window: the extension decides
        return "JSON Lines (named so; its first line is longer than the part read to detect it)"
    rest = _first_line_value(body)
    if rest is None:
        return None
    rest = rest.lstrip(b" \t\r\n")
    if rest[:1] in (b"{", b"[", b'"') or rest[:1].isdigit():
        return "JSON Lines (one JSON value per line)"
    return None


def _read_json(path, options):
    from converter.jsonstream import iter_json_members
    from converter.jsontags import TAG_PREFIX, decode, decode_parsed

    with open_input(path) as f:
        members = iter_json_members(f, name=str(path))
        first = next(members, None)
        if first is None:
            return
        second = next(members, None)
        key, value = first
        if second is None and key == RECORDS_TAG:
            # {"$records": [[key, value], ...]}: records whose keys may repeat, in order
            if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
                raise FormatError(f"{path}: {RECORDS_TAG} must hold a list of [key, value] pairs")
            name = str(path)
            for k, v in value:
                yield decode_parsed(k, name=name), decode_parsed(v, name=name)
            return
        if second is None and isinstance(key, str) and key.startswith(TAG_PREFIX):
            # The whole document is one tagged value, e.g. {"$dict": [[1, "a"], ...]}
            whole = decode({key: value}, name=str(path))
            if isinstance(whole, dict):
                yield from whole.items()
            elif isinstance(whole, (list, tuple)):
                yield from enumerate(whole)
            else:
                yield 0, whole
            return
        name = str(path)
        yield key, decode_parsed(value, name=name)
        if second is not None:
            yield second[0], decode_parsed(second[1], name=name)
            for key, value in members:
                yield key, decode_parsed(value, name=name)


_NO_KEY = object()  # encode() without a record to name


def _encoder(options, path=""):
    from converter.jsontags import _dumps_general
    from converter.jsontags.fast import _plain_text

    changes = Counter()
    style = options.json_style
    if style not in ("tagged", "plain"):
        raise UnsupportedValueError(f"--json-style must be tagged or plain, not {style!r}")

    def encode(value, key=_NO_KEY):
        # jsontags.dumps(value, style=style, changes=changes), minus a call layer per record
        text = _plain_text(value)
        if text is not None:
            return text
        try:
            return _dumps_general(value, style, changes, None, "")
        except UnsupportedValueError as exc:  # a cycle, a type JSON cannot hold, shared references that expand
            where = f"{path}: " if key is _NO_KEY else f"{path}: record {key!r}: "
            raise UnsupportedValueError(f"{where}{exc}") from None

    return encode, changes


def _report(path, options, changes):
    if changes:
        what = ", ".join(f"{n} {kind}" for kind, n in sorted(changes.items()))
        options.note(f"{path}: plain JSON changed values it cannot hold: {what}")


def _utf8(text, path, key):
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsupportedValueError(
            f"{path}: record {key!r} holds text with an unpaired surrogate, which UTF-8 JSON cannot hold"
        ) from None


def _write_json(path, records, options):
    from converter.jsontags import TAG_PREFIX

    encode, changes = _encoder(options, path)
    plain = options.json_style == "plain"
    records = iter(records)
    # the first records decide the document's shape: an object needs string keys, an array
    # the keys 0, 1, 2...; anything else is written as tagged pairs, which hold any key
    sample = list(itertools.islice(records, SAMPLE))
    with open_output(path) as out:
        if not sample:
            out.write(b"{}\n")
            return
        keys = [k for k, _ in sample]
        arraylike = all(_is_index(k, i) for i, k in enumerate(keys))
        if options.keep_pairs:
            # a key repeats (the core found it and converts again): every record as a pair,
            # read back as records with the same multiplicity
            mode = "pairs"
            out.write(b'{"' + RECORDS_TAG.encode() + b'": [\n')
        elif all(isinstance(k, str) for k in keys) or (plain and not arraylike):
            mode = "object"
            if len(sample) == 1 and isinstance(keys[0], str) and keys[0].startswith(TAG_PREFIX) and not plain:
                # one member named like a tag would read back as a tag: write it escaped
                out.write(_utf8(encode({keys[0]: sample[0][1]}, keys[0]), path, keys[0]) + b"\n")
                return
            out.write(b"{\n")
        elif arraylike:
            mode = "array"
            out.write(b"[\n")
        else:
            mode = "pairs"
            out.write(b'{"' + TAG_PREFIX.encode() + b'dict": [\n')
        lines = _Lines(out, b",\n")
        try:
            _json_lines(lines, itertools.chain(sample, records), mode, plain, encode, changes, path)
        finally:
            lines.flush()  # what came before an error is written, as it was line by line
        out.write({"object": b"\n}\n", "array": b"\n]\n", "pairs": b"\n]}\n"}[mode])
    _report(path, options, changes)


class _Lines:
    """Lines written in batches (one join, encode and write per BATCH lines, not per record).

    ``add`` checks a non-ASCII line with _utf8 as it is added, so an error names the record at
    the same point as when lines were written one by one.
    """

    BATCH = 1000

    def __init__(self, out, sep: bytes):
        self.out, self.sep, self.pending, self.started = out, sep, [], False

    def add(self, line: str, path, key):
        if not line.isascii():
            _utf8(line, path, key)  # raises for a lone surrogate
        pending = self.pending
        pending.append(line)
        if len(pending) >= self.BATCH:
            self.flush()

    def add_checked(self, lines: list):
        """Lines already known to be valid UTF-8 text (jsontags.plain_texts checked them)."""
        self.pending.extend(lines)
        if len(self.pending) >= self.BATCH:
            self.flush()

    def flush(self):
        if self.pending:
            # taken off first, so that a failed write is not tried again by the caller's finally
            data, self.pending = self.sep.decode().join(self.pending).encode("utf-8"), []
            self.out.write(self.sep + data if self.started else data)
            self.started = True


def _json_lines(lines, records, mode, plain, encode, changes, path):
    """Write the records as lines; a batch of records whose keys and values need nothing (str
    keys of an object, the next indexes of an array, plain values) goes to the C encoder in one
    call (jsontags.plain_texts), any other batch record by record, with the same result."""
    from converter.jsontags.fast import plain_texts
    from converter.jsontags.text import _LONE_SURROGATE_CHAR

    index = 0
    batch_size = lines.BATCH
    while True:
        batch = list(itertools.islice(records, batch_size))
        if not batch:
            return
        texts = None
        if mode != "pairs":
            keys = [k for k, _ in batch]
            if mode == "object":
                fits = set(map(type, keys)) <= _STR_ONLY
            else:
                fits = keys == list(range(index, index + len(batch)))
            if fits:
                texts = plain_texts([v for _, v in batch])
        if texts is not None and mode == "object":
            quoted = list(map(_quote, keys))
            head = "".join(quoted)
            if head.isascii() or not _LONE_SURROGATE_CHAR.search(head):
                texts = list(map(str.__add__, map(str.__add__, quoted, itertools.repeat(": ")), texts))
            else:
                texts = None  # a key with a lone surrogate: record by record, which refuses it
        if texts is not None:
            lines.add_checked(texts)
        else:
            _json_lines_one_by_one(lines, batch, index, mode, plain, encode, changes, path)
        index += len(batch)


_STR_ONLY = frozenset((str,))


def _json_lines_one_by_one(lines, records, index, mode, plain, encode, changes, path):
    from converter.jsontags.fast import _plain_text  # encode() tries it first: calling it here saves a call

    add = lines.add
    for key, value in records:
        if mode == "object":
            if not isinstance(key, str):
                if not plain:
                    raise ShapeMismatch(
                        f"{path}: record key {key!r} is {type(key).__name__} but the keys before it were "
                        f"strings; a JSON object holds only string keys (use jsonl, which holds any key)",
                        store=str(path), key=key)
                changes["non-str key"] += 1
                key = str(key)
            line = _quote(key) + ": " + (_plain_text(value) or encode(value, key))
        elif mode == "array":
            if not _is_index(key, index):
                raise ShapeMismatch(
                    f"{path}: record key {key!r} does not continue the array keys 0..{index - 1}; "
                    f"use jsonl, which holds any key", store=str(path), key=key)
            line = _plain_text(value) or encode(value, key)
        else:
            line = "[" + encode(key, key) + ", " + encode(value, key) + "]"
        add(line, path, key)
        index += 1


_quote = json.encoder.encode_basestring  # what json.dumps(key, ensure_ascii=False) calls, without its set-up


def _is_index(key, n):
    return type(key) is int and key == n


def _read_jsonl(path, options):
    from converter.jsonstream import iter_json_lines
    from converter.jsontags import decode_parsed as decode

    with open_input(path) as f:
        for lineno, obj in iter_json_lines(f, name=str(path)):
            name = f"{path} line {lineno + 1}"
            if type(obj) is dict and len(obj) == 2 and "key" in obj and "value" in obj:
                yield decode(obj["key"], name=name), decode(obj["value"], name=name)
            else:
                yield lineno, decode(obj, name=name)


def _write_jsonl(path, records, options):
    encode, changes = _encoder(options, path)
    with open_output(path) as out:
        lines = _Lines(out, b"")
        add = lines.add
        try:
            for key, value in records:
                add('{"key": ' + encode(key, key) + ', "value": ' + encode(value, key) + "}\n", path, key)
        finally:
            lines.flush()  # what came before an error is written, as it was line by line
    _report(path, options, changes)


@hookimpl
def register_formats(register):
    register(Format(
        name="json",
        unique_keys=True,
        description="JSON document: an object (string keys), an array (keys 0..n-1), or tagged pairs",
        extensions=(".json",),
        sniff=_sniff_json,
        reader=_read_json,
        writer=_write_json,
        stream=True,
        duplicates="pairs",
    ))
    register(Format(
        name="jsonl",
        description='JSON Lines: one {"key": K, "value": V} per line (other lines are keyed by line number)',
        aliases=("ndjson", "jsonlines"),
        extensions=(".jsonl", ".ndjson"),
        sniff=_sniff_jsonl,
        reader=_read_jsonl,
        writer=_write_jsonl,
        stream=True,
        duplicates="keep",
        priority=5,
    ))
