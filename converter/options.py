"""Options shared by readers, writers and codecs, and the notes they leave for the user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .budget import Budget

_HIGHEST_PROTOCOL = 5  # pickle.HIGHEST_PROTOCOL on every supported Python (3.8+), without importing pickle


@dataclass
class Options:
    """Everything a conversion can be told. Readers and writers take the fields they need.

    ``note(msg)`` records something the user should hear about (a codec chosen, keys
    overridden, values changed by a lossy style); the CLI prints notes on stderr.
    """

    key_codec: str | None = None
    value_codec: str | None = None
    pickle_protocol: int = 4
    json_style: str = "tagged"
    allow: tuple[str, ...] = ()
    trust: bool = False
    py2_strings: str = "utf8"
    table: str | None = None
    layout: str = "auto"
    pk: str | None = None  # SQLite table output: None is a "key" column (see plugins/sqlite.py)
    dbm: str | None = None
    database: str | None = None
    force: bool = False
    # automatic choices must keep every record exactly (set by --verify and migrate): SQLite's
    # auto layout falls back to key/value rather than add a key column or None fields
    lossless: bool = False
    # the resource budget (None: the defaults, with CONVERTER_BUDGET applied); see budget.py
    budget: Budget | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    on_note: Callable[[str], None] | None = None
    # (store, "read" or "write", "key" or "value", codec name): codecs that an earlier attempt
    # chose automatically and a later record did not fit (see converter/codecs.py)
    codec_exclusions: set = field(default_factory=set)
    # an output whose keys repeat keeps every record as pairs (JSON's {"$records": [...]})
    keep_pairs: bool = False
    # temporary output paths -> the names the user gave, so notes never show a temporary name
    display_names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        """Option values checked once, here, for the CLI and the library alike."""
        from .errors import OptionError

        if isinstance(self.allow, str):  # allow="geom.Point" is one name, not five letters
            self.allow = (self.allow,)
        self.allow = tuple(self.allow)
        parse_allow(self.allow)
        if type(self.pickle_protocol) is not int or not 0 <= self.pickle_protocol <= _HIGHEST_PROTOCOL:
            raise OptionError(f"--pickle-protocol {self.pickle_protocol!r}: must be 0 to {_HIGHEST_PROTOCOL} "
                              f"(0-2 for Python 2 readers)")
        for flag, value, allowed in (("--json-style", self.json_style, ("tagged", "plain")),
                                     ("--layout", self.layout, ("auto", "table", "kv")),
                                     ("--py2-strings", self.py2_strings, ("utf8", "latin1", "bytes"))):
            if value not in allowed:
                raise OptionError(f"{flag} {value!r}: must be {', '.join(allowed[:-1])} or {allowed[-1]}")
        for flag, value in (("--pk", self.pk), ("--table", self.table)):
            if value is not None and (type(value) is not str or not value.strip()):
                raise OptionError(f"{flag} {value!r}: must name a column or table")
        if self.pk is not None and self.layout == "kv":
            raise OptionError("--pk names a field that becomes a table's primary key; the kv layout has "
                              "no such column: drop --layout kv, or --pk")

    def note(self, message: str) -> None:
        for tmp, real in self.display_names.items():
            message = message.replace(tmp, real)
        self.notes.append(message)
        if self.on_note is not None:
            self.on_note(message)

    def pickle_kwargs(self) -> dict:
        return {"allow": self.allow, "trust": self.trust, "py2_strings": self.py2_strings}


def parse_allow(allow) -> frozenset[tuple[str, str]]:
    """``--allow`` names ("module.Name", or (module, name) pairs) as exact pairs; one name given
    as a str is one name. The one parser, for Options and for safepickle's own callers."""
    from .errors import OptionError

    pairs = set()
    for item in (allow,) if isinstance(allow, str) else allow or ():
        if isinstance(item, str):
            module, dot, name = item.strip().rpartition(".")
            if not dot or not module or not name:
                raise OptionError(f"--allow {item!r}: expected module.Name, e.g. --allow mymodule.Point")
        else:
            try:
                module, name = item
            except (TypeError, ValueError):
                raise OptionError(f"--allow {item!r}: expected 'module.Name' or a (module, name) pair") from None
        pairs.add((str(module), str(name)))
    return frozenset(pairs)
