"""The built-in value codecs: raw bytes, UTF-8 text, pickle and (tagged) JSON."""

from __future__ import annotations

from converter import Codec, hookimpl
from converter.errors import FormatError, UnsupportedValueError


def _raw_encode(value, options):
    if not isinstance(value, bytes):
        raise UnsupportedValueError(f"{type(value).__name__} is not bytes")
    return value


def _utf8_decode(data, options, what):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what}: not valid UTF-8 at byte {exc.start}") from None


def _utf8_encode(value, options):
    if not isinstance(value, str):
        raise UnsupportedValueError(f"{type(value).__name__} is not str")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsupportedValueError(f"text with an unpaired surrogate at index {exc.start} cannot be stored as UTF-8") from None


def _text_or_bytes_decode(data, options, what):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(data)


def _text_or_bytes_encode(value, options):
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise UnsupportedValueError(f"{type(value).__name__} is neither str nor bytes")
    return _utf8_encode(value, options)


def _foreign_bytes(value):
    """bytes that are not UTF-8: what a dbm store's reader gives back as bytes."""
    return type(value) is bytes and not _utf8_sniff(value)


def _text_or_foreign_bytes(value):
    """str, or bytes that are not UTF-8: what utf8-or-raw reads back as the same type."""
    if type(value) is str:
        return True
    return type(value) is bytes and not _utf8_sniff(value)


def _utf8_sniff(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _pickle_sniff(data):
    from converter.safepickle import pickle_length, pickle_protocol

    # a value is a pickle when its opcodes end exactly at its last byte (nothing is unpickled)
    return pickle_protocol(data[:16]) is not None and pickle_length(data) == len(data)


def _pickle_decode(data, options, what):
    from converter.safepickle import loads

    return loads(data, what=what, **options.pickle_kwargs())


def _pickle_encode(value, options):
    from converter.plugins.pickle import dumps

    try:
        return dumps(value, options.pickle_protocol)
    except UnsupportedValueError:
        raise
    except Exception as exc:
        raise UnsupportedValueError(f"cannot pickle {type(value).__name__}: {exc}") from None


def _json_decode(data, options, what):
    from converter import jsontags

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what}: not valid UTF-8 JSON at byte {exc.start}") from None
    try:
        return jsontags.loads(text)
    except FormatError as exc:
        raise FormatError(f"{what}: {exc}") from None


def _json_encode(value, options):
    from converter import jsontags

    return jsontags.dumps(value).encode("utf-8")


@hookimpl
def register_codecs(register):
    register(Codec("pickle", _pickle_decode, _pickle_encode, "pickled Python values (the shelve codec)",
                   sniff=_pickle_sniff, accepts=lambda v: True, order=10))
    register(Codec("json", _json_decode, _json_encode, "JSON text, with converter's tags for non-JSON values", order=15))
    register(Codec("utf8", _utf8_decode, _utf8_encode, "UTF-8 text (str)",
                   sniff=_utf8_sniff, accepts=lambda v: isinstance(v, str), order=20))
    # Detection tries it before utf8, and takes it when nine in ten of the first values are text:
    # a binary value among them, or later, stays bytes instead of stopping the conversion.
    # Writing, it comes after raw and utf8 (a store of only text or only bytes is written by
    # those) and holds only str and bytes that are not UTF-8, so what it writes reads back as is.
    register(Codec("utf8-or-raw", _text_or_bytes_decode, _text_or_bytes_encode,
                   "UTF-8 text (str) where the bytes are UTF-8, else the bytes (bytes), record by record",
                   sniff=_utf8_sniff, accepts=_text_or_foreign_bytes, order=18, sniff_share=0.9))
    # Automatic choice writes bytes raw only when they are not UTF-8 text: bytes that are would
    # read back as str (a store keeps no types), so they are pickled instead, and come back bytes.
    register(Codec("raw", lambda data, options, what: bytes(data), _raw_encode, "the stored bytes, unchanged",
                   sniff=lambda data: True, accepts=_foreign_bytes, order=90))
