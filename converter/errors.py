"""Exceptions raised by the library. The CLI turns them into one-line messages and exit codes.

Every message is a single line that names the file (or record) and the problem.
"""


class ConverterError(Exception):
    """Base class: a problem with the user's input, output or request (exit status 1)."""


class FormatError(ConverterError):
    """An input is damaged, truncated or not what its format says."""


class DetectionError(ConverterError):
    """No format could be determined for a path."""


class UnknownFormatError(ConverterError):
    """A format or codec name that no plugin registered."""


class UnsafePickleError(ConverterError):
    """A pickle asked for a global that the allowlist does not contain."""


class UnsupportedValueError(ConverterError):
    """A sink cannot hold a value without changing it."""


class OutputError(ConverterError):
    """The output cannot be written: it exists, it is the input, or its directory is missing."""


class PluginError(ConverterError):
    """A plugin registered something invalid; the message names the plugin."""
