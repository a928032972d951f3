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
    "read_records",
]
__version__ = "0.1.0"
