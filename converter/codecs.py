"""Applying value codecs to a key-value store's records (bytes -> values, values -> bytes).

The codecs of a conversion fit every record of the store, not just the first ones:

- Reading: a forced codec, or the first codec (lowest ``Codec.order``) whose ``sniff`` accepts
  every key (or value) among the first records. With the built-ins that is ``pickle`` when the
  first values are complete pickles, else ``utf8-or-raw`` when nine in ten of them are UTF-8
  text (every record is then text where its bytes are UTF-8 and bytes where not, so a
  mostly-text store with a few binary values needs no flag and writes back byte for byte), else
  ``raw``.
- Writing: a forced codec, or the codec with the highest ``order`` whose ``accepts`` takes every
  key (or value) among the first records: bytes that are not UTF-8 stay bytes, text is stored
  as UTF-8, text mixed with such bytes as each is, anything else (bytes that look like text
  included, as they would read back as str) is pickled, so what is written reads back as it was.
- A later record that does not fit an automatically chosen codec raises ``CodecMismatch``. A
  source that can be read again (any file) is then converted again from the start with that
  codec ruled out, and the choice is named on stderr; output goes to a scratch directory, so
  nothing of the first attempt is left. For stdin the mismatch is the error, naming the record.
  A forced codec that does not fit is always an error.
"""

from __future__ import annotations

from itertools import chain, islice
from typing import Iterable, Iterator

from .errors import CodecMismatch, ConverterError, FormatError, UnsupportedValueError

FIRST_RECORDS = 100  # records whose keys and values choose an automatic codec


def _first(records: Iterable) -> tuple[list, Iterator]:
    it = iter(records)
    first = list(islice(it, FIRST_RECORDS))
    return first, chain(first, it)


def _candidates(registry, options, name, direction, role):
    """The codecs an automatic choice tries, in order: the built-in ones only. A plugin's codec
    is used when asked for by name (--key-codec/--value-codec, or a format's key_codec/
    value_codec), so no plugin can become every store's codec by accepting everything."""
    from .registry import BUILTIN_PLUGINS

    excluded = options.codec_exclusions
    descending = direction == "write"
    for codec in sorted(registry.codecs.values(), key=lambda c: -c.order if descending else c.order):
        if codec.plugin in BUILTIN_PLUGINS and (name, direction, role, codec.name) not in excluded:
            yield codec


def _ruled_out(options, name, direction, role) -> list[str]:
    return [c for (n, d, r, c) in sorted(options.codec_exclusions) if (n, d, r) == (name, direction, role)]


def _why(options, name, direction, role) -> str:
    out = _ruled_out(options, name, direction, role)
    return f"; {', '.join(out)} did not fit every record" if out else ""


def _sniffed(codec, samples) -> bool:
    if codec.sniff_share >= 1.0:
        return all(codec.sniff(s) for s in samples)
    return sum(1 for s in samples if codec.sniff(s)) >= codec.sniff_share * len(samples)


def _pick_for_reading(registry, forced, samples, role, options, name):
    if forced:
        return registry.codec(forced), "forced"
    for codec in _candidates(registry, options, name, "read", role):
        if codec.sniff is not None and _sniffed(codec, samples):
            if samples:
                options.note(f"{name}: {role}s read as {codec.name} (detected{_why(options, name, 'read', role)}; "
                             f"--{role}-codec to force)")
            return codec, "detected"
    raise ConverterError(f"{name}: no codec can read its {role}s; pick one with --{role}-codec")


def decode_records(records, registry, options, name, key_codec=None, value_codec=None, keys=True) -> Iterator[tuple]:
    """Turn (bytes, bytes) records into (key, value) with the chosen codecs (keys as they are if not ``keys``)."""
    first, records = _first(records)
    if keys:
        kc, kwhy = _pick_for_reading(registry, options.key_codec or key_codec, [k for k, _ in first], "key", options, name)
    else:
        kc, kwhy = None, ""
    vc, vwhy = _pick_for_reading(registry, options.value_codec or value_codec, [v for _, v in first], "value", options, name)
    for raw_key, raw_value in records:
        key = _decode(kc, raw_key, options, name, lambda: f"key {raw_key!r} of {name}", "key", kwhy) if kc else raw_key
        value = _decode(vc, raw_value, options, name, lambda: f"record {key!r} of {name}", "value", vwhy)
        yield key, value


def _decode(codec, data, options, name, what, role, why):
    # ``what`` names the record in error messages only: it is built only when a decode fails
    try:
        return codec.decode(data, options, name)
    except ConverterError:
        try:
            codec.decode(data, options, what())
        except FormatError as exc:
            if why != "forced" and codec.sniff is not None and not codec.sniff(data):
                # not this codec's data at all (a damaged or refused one would still sniff as it)
                raise CodecMismatch(
                    f"{exc} (the first {role}s are {codec.name}, this one is not; pick a codec that fits "
                    f"every {role} with --{role}-codec: raw always does)",
                    store=name, direction="read", role=role, codec=codec.name) from exc
            raise FormatError(f"{exc} ({role} codec {codec.name}, {why}; try --{role}-codec raw)") from exc
        raise


def _pick_for_writing(registry, forced, samples, role, options, name):
    if forced:
        return registry.codec(forced), "forced"
    for codec in _candidates(registry, options, name, "write", role):
        if codec.accepts is not None and all(codec.accepts(s) for s in samples):
            if samples:
                options.note(f"{name}: {role}s stored as {codec.name} (chosen{_why(options, name, 'write', role)}; "
                             f"--{role}-codec to force)")
            return codec, "chosen"
    raise UnsupportedValueError(f"{name}: no codec can store these {role}s; pick one with --{role}-codec")


def encode_records(records, registry, options, name, key_codec=None, value_codec=None) -> Iterator[tuple[bytes, bytes]]:
    """Turn (key, value) records into (bytes, bytes) with the chosen codecs."""
    first, records = _first(records)
    kc, kwhy = _pick_for_writing(registry, options.key_codec or key_codec, [k for k, _ in first], "key", options, name)
    vc, vwhy = _pick_for_writing(registry, options.value_codec or value_codec, [v for _, v in first], "value", options, name)
    # ``accepts`` rules an automatic choice; a forced codec is held to what its encode takes
    k_check = kc.accepts if kwhy != "forced" else None
    v_check = vc.accepts if vwhy != "forced" else None
    for key, value in records:
        if k_check is not None and not k_check(key):
            _refuse(name, "key", kc, kwhy, key, f"key {key!r} is {type(key).__name__}", "")
        if v_check is not None and not v_check(value):
            _refuse(name, "value", vc, vwhy, key, f"the value of record {key!r} is {type(value).__name__}",
                    " (pickle holds any plain data)")
        role = "key"
        try:
            k = kc.encode(key, options)
            role = "value"
            yield k, vc.encode(value, options)
        except ConverterError as exc:
            hint = ""
            codec, why, flag = (kc, kwhy, options.key_codec) if role == "key" else (vc, vwhy, options.value_codec)
            if isinstance(exc, UnsupportedValueError) and why == "forced":
                hint = (f" (the {role} codec was forced with --{role}-codec {flag})" if flag else
                        f" (this format stores every {role} with the {codec.name} codec)")
            raise type(exc)(f"{name}: record {key!r}: {exc}{hint}") from exc


def _refuse(name, role, codec, why, key, what, hint):
    message = (f"{name}: {what}, which the {role} codec {codec.name} ({why}) cannot store; "
               f"choose another with --{role}-codec{hint}")
    if why == "forced":
        raise UnsupportedValueError(message)
    raise CodecMismatch(message, store=name, direction="write", role=role, codec=codec.name, record=key)
