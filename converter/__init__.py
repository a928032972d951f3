"""converter-toolkit: convert data between Python's persistence formats.

    >>> import converter
    >>> converter.convert("people.pkl", "people.json")
    >>> for key, value in converter.read_records("people.pkl"): ...

Plugin authors need one import: ``from converter import hookimpl, Format, Codec``.
"""

from .errors import ConverterError
from .options import Options
from .registry import Codec, Format, get_registry, hookimpl
from .pipeline import Result, convert, read_records

__all__ = [
    "Codec",
    "ConverterError",
    "Format",
    "Options",
    "Result",
    "convert",
    "get_registry",
    "hookimpl",
    "migrate",
    "read_records",
]
__version__ = "0.1.0"


def __getattr__(name):
    # converter.migrate(src, dest, ...) without paying for the engine at ``import converter``
    if name == "migrate":
        from .migration import migrate

        return migrate
    raise AttributeError(f"module 'converter' has no attribute {name!r}")
