"""Find the stores in a directory tree: every file the registry recognises by content, grouped
with its companion files (``NAME.dat`` + ``NAME.dir`` + ``NAME.bak``, ``NAME.dir`` + ``NAME.pag``),
so that a companion never becomes a store of its own.

Detection is ``converter.detect.sniff`` on each file, the very check ``convert`` makes; a format
claims a file only when the file is one of the store's own files (``Format.parts``). Files no
format claims are "not data", listed with what they look like; symbolic links are listed and not
followed; files and directories that cannot be read are listed as unreadable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConverterError

# files a SQLite database leaves beside itself: part of that store, never one of their own
_SQLITE_SIDECARS = ("-journal", "-wal", "-shm")


@dataclass
class Store:
    """One store: the path it is converted from (``main``), its format, and all its files."""

    main: Path
    format: str
    reason: str
    parts: list[Path] = field(default_factory=list)

    def rel(self, root: Path) -> str:
        return self.main.relative_to(root).as_posix()


@dataclass
class Tree:
    stores: list[Store] = field(default_factory=list)
    not_data: list[dict] = field(default_factory=list)  # {"path", "reason"}
    unreadable: list[dict] = field(default_factory=list)  # {"path", "error"}


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def scan(root, registry, exclude: Path | None = None) -> Tree:
    """Every store under ``root`` (sorted by path), and what else was found there."""
    from .detect import sniff

    root = Path(root)
    tree = Tree()
    candidates = []  # (store, number of its files that exist)
    others = []  # files no format claims: (path, reason)

    def onerror(exc: OSError):
        name = Path(exc.filename) if exc.filename else root
        tree.unreadable.append({"path": _rel(name, root) if name != root else ".",
                                "error": f"cannot list the directory: {exc.strerror}"})

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=False):
        here = Path(dirpath)
        dirnames.sort()
        if exclude is not None:
            dirnames[:] = [d for d in dirnames if (here / d) != exclude]
        for d in list(dirnames):
            if (here / d).is_symlink():
                tree.not_data.append({"path": _rel(here / d, root), "reason": "symbolic link to a directory, not followed"})
        for name in sorted(filenames):
            path = here / name
            if path.is_symlink():
                tree.not_data.append({"path": _rel(path, root), "reason": "symbolic link, not followed"})
                continue
            if not path.is_file():
                tree.not_data.append({"path": _rel(path, root), "reason": "not a regular file"})
                continue
            try:
                found = sniff(path, registry)
            except ConverterError as exc:  # cannot be read: permission denied, I/O error
                tree.unreadable.append({"path": _rel(path, root), "error": str(exc)})
                continue
            except OSError as exc:
                tree.unreadable.append({"path": _rel(path, root), "error": f"{path}: {exc.strerror or exc}"})
                continue
            store = _own_store(path, found)
            if store is None:
                others.append(path)
            else:
                candidates.append(store)

    # multi-file stores claim their files first, so a companion (NAME.dir of a dbm.dumb store)
    # is never converted on its own; the same store found from each of its files counts once
    claimed: dict[Path, Store] = {}
    for store in sorted(candidates, key=lambda s: (-len(s.parts), str(s.main))):
        if any(p in claimed for p in store.parts):
            continue
        for p in store.parts:
            claimed[p] = store
        tree.stores.append(store)
    tree.stores.sort(key=lambda s: str(s.main))

    for path in others:
        owner = claimed.get(path) or _sqlite_owner(path, claimed)
        if owner is not None:
            if path not in owner.parts:
                owner.parts.append(path)
            continue
        tree.not_data.append({"path": _rel(path, root), "reason": _what(path)})
    tree.not_data.sort(key=lambda d: d["path"])
    tree.unreadable.sort(key=lambda d: d["path"])
    return tree


def _own_store(path: Path, found) -> Store | None:
    """The best format whose store ``path`` is one of the files of (a sniff can also match on a
    companion beside the file: that companion is found as a store when the walk reaches it)."""
    for fmt, reason in found:
        try:
            parts = [p for p in fmt.parts(path) if p.exists()]
        except Exception:  # a plugin's files() must not break the walk
            continue
        if path in parts:
            main = parts[0] if parts[0].is_file() else path
            return Store(main=main, format=fmt.name, reason=reason, parts=parts)
    return None


def _sqlite_owner(path: Path, claimed: dict) -> Store | None:
    for suffix in _SQLITE_SIDECARS:
        if path.name.endswith(suffix):
            return claimed.get(path.with_name(path.name[: -len(suffix)]))
    return None


def _what(path: Path) -> str:
    from .detect import looks_like, read_head

    try:
        hint = looks_like(read_head(path))
    except ConverterError:
        hint = ""
    if not hint:
        return "empty file, no format" if path.stat().st_size == 0 else "no format recognises its content"
    return f"no format recognises its content ({hint})"
