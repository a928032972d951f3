"""Options shared by readers, writers and codecs, and the notes they leave for the user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .budget import Budget


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
    pk: str = "key"
    dbm: str | None = None
    database: str | None = None
    force: bool = False
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

    def note(self, message: str) -> None:
        for tmp, real in self.display_names.items():
            message = message.replace(tmp, real)
        self.notes.append(message)
        if self.on_note is not None:
            self.on_note(message)

    def pickle_kwargs(self) -> dict:
        return {"allow": self.allow, "trust": self.trust, "py2_strings": self.py2_strings}
