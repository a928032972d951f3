"""``convert identify``: what a file is and why."""

from __future__ import annotations

from pathlib import Path

from .budget import BudgetError, naming
from .detect import _check_exists, detect_input, sniff
from .options import Options
from .registry import get_registry


def identify(path, registry=None) -> dict:
    """{'path', 'format', 'reason', 'details', 'also'} for ``path``; raises DetectionError."""
    registry = registry or get_registry()
    path = Path(path)
    _check_exists(path, list(registry))
    found = sniff(path, registry)
    if found:
        fmt, reason = found[0]
    else:
        fmt, reason = detect_input(path, registry, flag=None)  # identify has no --from
    details = {}
    if fmt.describe is not None:
        try:
            details = fmt.describe(path, Options(py2_strings="bytes"))  # a plugin's is guarded (guard.py)
        except BudgetError as exc:
            raise naming(exc, path) from None
    if fmt.name in registry.replaced and not fmt.builtin:
        from .guard import who

        reason = f"{reason}; the format of {who(fmt.plugin, fmt.distribution)}, replacing the built-in {fmt.name}"
    return {
        "path": str(path),
        "format": fmt.name,
        "reason": reason,
        "details": details,
        "also": [f"{f.name} ({r})" + ("" if f.builtin or not fmt.builtin else f"; plugin {f.plugin!r} loses to the built-in {fmt.name}")
                 for f, r in found[1:]],
    }
