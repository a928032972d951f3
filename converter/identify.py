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
                 for f, r in found[1:]] + _extension_rivals(path, fmt, found, registry),
    }


def _extension_rivals(path: Path, fmt, found, registry) -> list:
    """Plugin formats whose extension the name ends with (or, for a plugin's answer, built-in
    ones), and why they were not chosen: a conflict with a plugin is never hidden."""
    name, shown = path.name.lower(), {f.name for f, _ in found}
    out = []
    for other in registry:
        if other is fmt or other.name in shown or other.reader is None or (other.builtin and fmt.builtin):
            continue
        ext = next((e for e in other.extensions if name.endswith(e.lower())), None)
        if ext is None:
            continue
        from .guard import who

        owner = "the built-in" if other.builtin else f"{who(other.plugin, other.distribution)}'s"
        why = (f"the built-in {fmt.name} keeps it" if fmt.builtin and not other.builtin
               else "--from chooses it")
        out.append(f"{other.name} (extension {ext}; {owner} format: {why})")
    return out
