"""Exceptions raised by the library. The CLI turns them into one-line messages and exit codes.

Every message is a single line that names the file (or record) and the problem.
"""


class ConverterError(Exception):
    """Base class: a problem with the user's input, output or request (exit status 1)."""


class FormatError(ConverterError):
    """An input is damaged, truncated or not what its format says."""


class ChoiceNeededError(FormatError):
    """The input holds several things to convert and one must be chosen (``option``: the flag
    that chooses, ``choices``: what there is), such as a SQLite database of several tables."""

    def __init__(self, message: str, option: str, choices: list):
        super().__init__(message)
        self.option, self.choices = option, list(choices)


class DetectionError(ConverterError):
    """No format could be determined for a path."""


class OptionError(ConverterError):
    """An option's value is not one this tool takes (the CLI exits 2, as for a usage error)."""


class UnknownFormatError(OptionError):
    """A format or codec name that no plugin registered."""


class UnsafePickleError(ConverterError):
    """A pickle asked for a global that the allowlist does not contain."""


class UnsupportedValueError(ConverterError):
    """A sink cannot hold a value without changing it."""


class OutputError(ConverterError):
    """The output cannot be written: it exists, it is the input, or its directory is missing."""


class PluginError(ConverterError):
    """A plugin registered something invalid; the message names the plugin."""


class Restart(ConverterError):
    """A choice made from the first records does not fit a later one.

    Not an error the user sees when the source can be read again: the core then converts again
    from the start with the choice changed (``apply``), so what it chose fits every record. The
    message is the error for a source that cannot be read twice (stdin) or output that cannot be
    taken back (stdout).
    """

    def apply(self, options) -> bool:
        """Change ``options`` so that the next attempt fits; False if that was tried already."""
        raise NotImplementedError

    def note(self) -> str:
        raise NotImplementedError


class CodecMismatch(Restart):
    """A record does not fit a codec that was chosen automatically from the first records:
    the next attempt rules that codec out (``Options.codec_exclusions``)."""

    def __init__(self, message: str, *, store: str = "", direction: str = "", role: str = "", codec: str = "",
                 record=None):
        super().__init__(message)
        self.store, self.direction, self.role, self.codec, self.record = store, direction, role, codec, record

    @property
    def exclusion(self) -> tuple:
        return (self.store, self.direction, self.role, self.codec)

    def apply(self, options) -> bool:
        if self.exclusion in options.codec_exclusions:
            return False
        options.codec_exclusions.add(self.exclusion)
        return True

    def note(self) -> str:
        verb = "read" if self.direction == "read" else "stored"
        return (f"{self.store}: a {self.role} that {self.codec} cannot hold came after the first records; "
                f"converting again with {self.role}s not {verb} as {self.codec}")


class LayoutFallback(Restart):
    """A layout chosen automatically from the first records does not fit a later one (a SQLite
    table row): the next attempt uses ``--layout kv``, and says why."""

    def __init__(self, message: str, *, store: str = "", why: str = ""):
        super().__init__(message)
        self.store, self.why = store, why

    def apply(self, options) -> bool:
        if options.layout == "kv":
            return False
        options.layout = "kv"
        return True

    def note(self) -> str:
        return f"{self.store}: {self.why}; converting again with --layout kv"


class _KeepPairs(Restart):
    """A key that a dict-shaped JSON output cannot take: the next attempt writes every record as
    [key, value] pairs (``Options.keep_pairs``)."""

    def __init__(self, message: str, *, store: str = "", key=None):
        super().__init__(message)
        self.store, self.key = store, key

    def apply(self, options) -> bool:
        if options.keep_pairs:
            return False
        options.keep_pairs = True
        return True


class RepeatedKey(_KeepPairs):
    """A key repeats in an output that is dict-shaped while keys are unique (JSON)."""

    def note(self) -> str:
        which = "a key" if self.key is None else f"key {self.key!r}"  # None: counted at the end (keyset.py)
        return (f"{self.store}: {which} occurs more than once; converting again to keep every record, "
                f"as a list of [key, value] pairs")


class ShapeMismatch(_KeepPairs):
    """A key after the first records does not fit the document shape they chose (a JSON object
    needs str keys, an array 0, 1, 2...)."""

    def note(self) -> str:
        return (f"{self.store}: key {self.key!r} came after the first records and does not fit their shape; "
                f"converting again as a list of [key, value] pairs, which holds any key")


def restart_in(exc: BaseException):
    """The Restart that ``exc`` is, or that it was raised from (a writer may wrap it)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Restart):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
