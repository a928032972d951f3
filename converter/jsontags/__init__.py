"""Lossless "tagged" JSON for Python values, and the lossy "plain" alternative.

Plain data stays plain JSON: a dict with str keys, a list, a str, an int within
+/-(2**53-1), a finite float (including -0.0, which JSON and Python's json
round-trip as ``-0.0``), True/False and None are written as themselves, so
``{"Omkar": {"key": "Omkar", "age": 21}}`` encodes to exactly that structure.

Every other supported value is written as a *tag*: a JSON object with exactly one
key, ``TAG_PREFIX`` + the tag name, whose value is the payload.  An object is a
tag only if it has exactly one key and that key starts with ``$``; a user dict of
that shape (``{"$set": 1}`` from MongoDB data) is wrapped in ``$escape`` so it
reads back unchanged.  Objects with two or more keys are never tags, whatever
their keys look like.  Reading an unknown tag, or a tag whose payload does not
have the documented shape, is a FormatError naming the tag.

=================  ===========================  ======================================================
Tag                Python value                 Payload
=================  ===========================  ======================================================
``$escape``        dict with one key "$..."     ``{"$key": <encoded value>}`` (the key is not a tag)
``$dict``          dict with a key that is not  ``[[<encoded key>, <encoded value>], ...]`` in order
                   a str (or holds a lone
                   surrogate)
``$ordereddict``   collections.OrderedDict      ``[[<encoded key>, <encoded value>], ...]`` in order
``$defaultdict``   collections.defaultdict      ``{"factory": "list"|"dict"|..., or null, "items": [[k, v], ...]}``;
                                                factory must be None or a builtin type (list, dict,
                                                set, frozenset, tuple, int, float, complex, str, bytes,
                                                bytearray, bool)
``$tuple``         tuple                        ``[<encoded item>, ...]``
``$set``           set                          ``[<encoded item>, ...]`` sorted by the items' compact
``$frozenset``     frozenset                    JSON text, so the output is stable between runs
``$deque``         collections.deque            ``{"items": [<encoded item>, ...], "maxlen": int|null}``
``$bytes``         bytes                        standard base64 text with padding
``$bytearray``     bytearray                    standard base64 text with padding
``$str``           str holding a lone surrogate base64 of ``s.encode("utf-8", "surrogatepass")``
                   (U+D800..U+DFFF unpaired)    (UTF-8 JSON text cannot hold such a str)
``$int``           int beyond +/-(2**53-1)      decimal text, e.g. ``"-9007199254740993"``; any size
                                                (not limited by Python's 4300-digit int<->str limit)
``$float``         float NaN, +inf, -inf        ``"nan"``, ``"-nan"`` (sign bit set), ``"inf"``,
                                                ``"-inf"``; other NaN payload bits are not kept
``$complex``       complex                      ``[<encoded real>, <encoded imag>]`` (floats, so NaN
                                                and inf parts are ``$float`` tags)
``$decimal``       decimal.Decimal              ``str(d)``: keeps sign, exponent, -0, NaN, sNaN,
                                                NaN payloads, Infinity, -Infinity
``$date``          datetime.date                ``date.isoformat()``, e.g. ``"2024-02-29"``
``$datetime``      datetime.datetime            ``isoformat()`` text when it says everything: naive
                                                or a datetime.timezone without a name, and fold 0,
                                                e.g. ``"2024-02-29T13:45:00.000001+05:30"``.
                                                Otherwise ``{"local": <naive isoformat>,
                                                "tz": <encoded tzinfo>|null, "fold": 0|1}``
``$time``          datetime.time                same two forms as ``$datetime``
``$timedelta``     datetime.timedelta           ``[days, seconds, microseconds]`` (its normalised fields)
``$timezone``      datetime.timezone            ``{"offset": [days, seconds, microseconds]}``, plus
                                                ``"name": str`` when one was given
``$zoneinfo``      zoneinfo.ZoneInfo            its key, e.g. ``"Europe/Paris"`` (needs tz data when read)
``$range``         range                        ``[<encoded start>, <encoded stop>, <encoded step>]``
``$slice``         slice                        ``[<encoded start>, <encoded stop>, <encoded step>]``
=================  ===========================  ======================================================

Types are matched exactly: a subclass (a namedtuple, an IntEnum, a str subclass)
would lose its class, so it is refused with UnsupportedValueError naming the type,
like any other instance, function or tzinfo this table does not list.  A cyclic
value is refused too ("cyclic value cannot be written as JSON").  Shared
(non-cyclic) references are written once per reference: JSON has no sharing.

Nesting depth is not limited: encode(), decode(), plain(), dumps() and loads()
work without recursion (Python's json module is tried first and, when it hits
its recursion limit near depth 1000, an iterative writer/parser takes over), so
100,000 nested lists round-trip.  Deep values are slower (a few seconds per
100,000 levels of tagged containers) and ``dumps(..., indent=N)`` of a deep
value grows with the square of its depth, as every line carries its indentation.

``plain()`` writes ordinary JSON that other programs understand and counts each
change by a short label: "bytes" (UTF-8 text if it decodes, else base64 text),
"bytearray", "tuple"/"set"/"frozenset"/"deque" (-> list; sets sorted like
above), "OrderedDict"/"defaultdict" (-> object), "datetime"/"date"/"time"
(-> isoformat), "timedelta" (-> ISO 8601 duration such as "-P1DT2H3M4.5S"),
"timezone"/"zoneinfo" (-> its name or key), "Decimal" (-> str), "complex" (->
[real, imag]), "float nan/inf" (-> null), "str with lone surrogate" (each one
-> U+FFFD), "range"/"slice" (-> their repr text), "non-str key" (None, bools,
ints and floats become "null", "true"/"false", "1", "1.5" as json.dumps writes
them; other keys become their plain text or str()), "key collision" (two keys
became the same text: the later value is kept), and "int beyond 2**53" (kept as
an exact JSON number, but many JSON readers round it).  Tag-looking dicts are
left alone: plain JSON has no tags.

Reading is strict: NaN/Infinity, duplicate keys, lone surrogates written as
``\\ud800`` escapes (the str could not be written as UTF-8 again) and trailing
data are FormatErrors.  Integers of any length are read exactly.  A number too
large for a float (``1e400``) reads as inf, as in Python's json module.
"""

from __future__ import annotations

import collections
import json

from converter.errors import FormatError

from .decoder import decode, decode_parsed
from .encoder import encode
from .fast import _plain_text, plain_texts
from .plain_encoder import plain
from .text import (
    _LONE_SURROGATE_CHAR, _WS, _line_col, _problem, _raw_decode, _to_text, _where,
    MAX_SAFE_INT, TAG_PREFIX, object_pairs_hook,
)
from .walk import expansion_message

__all__ = ["MAX_SAFE_INT", "TAG_PREFIX", "decode", "decode_parsed", "dumps", "encode", "expansion_message",
           "loads", "object_pairs_hook", "plain", "plain_texts"]


def loads(text, *, name: str = ""):
    """Strictly parse one JSON document (str, or UTF-8 bytes) and decode its tags.

    A leading UTF-8 BOM is skipped.  NaN/Infinity, duplicate keys, lone
    surrogates, trailing data and bad syntax raise FormatError naming the position.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{_where(name)}invalid UTF-8 at byte {exc.start}") from None
    elif not text.isascii():
        bad = _LONE_SURROGATE_CHAR.search(text)
        if bad:
            raise FormatError(f"{_where(name)}lone surrogate character at character {bad.start()}")
    if text.startswith("\ufeff"):
        text = text[1:]
    start = _WS.match(text).end()
    if start == len(text):
        raise FormatError(f"{_where(name)}{'empty text' if not text else 'no JSON value, only whitespace'}")
    try:
        value, end = _raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{_where(name)}{_problem(exc)} at {_line_col(text, exc.pos)}") from None
    except FormatError as exc:
        pos = getattr(exc, "pos", None)
        at = f" at {_line_col(text, pos)}" if pos is not None else ""
        raise FormatError(f"{_where(name)}{exc}{at}") from None
    end = _WS.match(text, end).end()
    if end != len(text):
        raise FormatError(f"{_where(name)}extra data after the JSON value at {_line_col(text, end)}")
    return decode_parsed(value, name=name)



def dumps(value, *, style: str = "tagged", changes: collections.Counter | None = None,
          indent=None, name: str = "") -> str:
    """One value as JSON text: ``style="tagged"`` is lossless, ``"plain"`` counts its changes in ``changes``.

    Always valid UTF-8-encodable JSON (no NaN/Infinity, no lone surrogates).  With
    indent=None the text is compact (``,`` and ``:`` separators); otherwise json's
    indented layout with ``": "`` after keys.
    """
    if indent is None and (style == "tagged" or style == "plain"):
        text = _plain_text(value)
        if text is not None:
            return text
    return _dumps_general(value, style, changes, indent, name)


def _dumps_general(value, style, changes, indent, name) -> str:
    """dumps() without its fast path (for callers that tried _plain_text first)."""
    if style == "tagged":
        obj = encode(value, name=name)
    elif style == "plain":
        obj = plain(value, changes if changes is not None else collections.Counter(), name=name)
    else:
        raise ValueError(f"style must be 'tagged' or 'plain', not {style!r}")
    return _to_text(obj, indent)
