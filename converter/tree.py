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
    builtin: bool = True  # a built-in format's store keeps a file a plugin's also claims

    def rel(self, root: Path) -> str:
        return self.main.relative_to(root).as_posix()


@dataclass
class Tree:
    stores: list[Store] = field(default_factory=list)
    not_data: list[dict] = field(default_factory=list)  # {"path", "reason"}
    unreadable: list[dict] = field(default_factory=list)  # {"path", "error"}


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def scan(root, registry, exclude: Path | None = None, detect_map=None) -> Tree:
    """Every store under ``root`` (sorted by path), and what else was found there.

    ``detect_map(function, batches)``: how the batches of files are detected, ``map`` by default;
    ``convert migrate`` passes its process pool's ``map``, so detection, most of the plan's cost,
    runs on every core (``function`` is ``detect_batch``, which uses the worker's own registry).
    """
    root = Path(root)
    tree = Tree()
    files = _walk(root, exclude, tree)
    if detect_map is None:
        found = [detect_batch(files, registry)]
    else:
        size = max(1, min(64, -(-len(files) // 16)))  # a few batches per worker, each worth the round trip
        found = list(detect_map(detect_batch, [files[i:i + size] for i in range(0, len(files), size)]))
    candidates, others = [], []  # stores, and files no format claims
    for batch in found:
        for kind, item in batch:
            if kind == "store":
                candidates.append(item)
            elif kind == "other":
                others.append(item)
            else:
                path, error = item
                tree.unreadable.append({"path": _rel(path, root), "error": error})
    _group(root, tree, candidates, others)
    return tree


def _walk(root: Path, exclude: Path | None, tree: Tree) -> list[Path]:
    """The regular files under ``root`` in sorted walk order; links, other kinds of file and
    directories that cannot be listed go into ``tree`` (the listing's file types: no stat a file)."""
    files = []
    pending = [root]
    while pending:
        here = pending.pop()
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            tree.unreadable.append({"path": _rel(here, root) if here != root else ".",
                                    "error": f"{here}: cannot list the directory: {exc.strerror}"})
            continue
        subdirs = []
        for entry in entries:
            path = here / entry.name
            try:
                if entry.is_symlink():
                    tree.not_data.append({"path": _rel(path, root), "reason": _link(entry)})
                elif entry.is_dir(follow_symlinks=False):
                    if exclude is None or path != exclude:
                        subdirs.append(path)
                elif entry.is_file(follow_symlinks=False):
                    files.append(path)
                else:
                    tree.not_data.append({"path": _rel(path, root), "reason": "not a regular file"})
            except OSError as exc:
                tree.unreadable.append({"path": _rel(path, root), "error": f"{path}: {exc.strerror or exc}"})
        pending.extend(reversed(subdirs))  # depth first, in name order, as os.walk lists them
    return files


def _link(entry) -> str:
    """A symbolic link, in words: it is listed, never followed, and never an error."""
    try:
        if entry.is_dir():
            return "symbolic link to a directory, not followed"
        if not os.path.exists(entry.path):
            return "broken symbolic link, not followed"
    except OSError:  # a loop (ELOOP), or a target this user cannot look at
        return "symbolic link that cannot be resolved (a loop?), not followed"
    return "symbolic link, not followed"


def detect_batch(paths: list[Path], registry=None) -> list[tuple]:
    """For each file: ("store", Store), ("other", path) or ("unreadable", (path, error))."""
    from .detect import sniff

    if registry is None:
        from .registry import get_registry

        registry = get_registry()
    out = []
    for path in paths:
        try:
            store = _own_store(path, sniff(path, registry))
        except ConverterError as exc:  # cannot be read: permission denied, I/O error
            out.append(("unreadable", (path, str(exc))))
            continue
        except OSError as exc:
            out.append(("unreadable", (path, f"{path}: {exc.strerror or exc}")))
            continue
        out.append(("other", path) if store is None else ("store", store))
    return out


def _group(root: Path, tree: Tree, candidates: list, others: list) -> None:
    # multi-file stores claim their files first, so a companion (NAME.dir of a dbm.dumb store)
    # is never converted on its own; the same store found from each of its files counts once
    claimed: dict[Path, Store] = {}
    for store in sorted(candidates, key=lambda s: (not s.builtin, -len(s.parts), str(s.main))):
        if not store.builtin:  # a plugin's store never takes a file a built-in store has
            if store.main in claimed:
                continue
            store.parts = [p for p in store.parts if p not in claimed]
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
        reason = _what(path)
        if isinstance(reason, tuple):  # a store's file whose companion is missing: records lost
            tree.unreadable.append({"path": _rel(path, root), "error": f"{path}: {reason[1]}"})
        else:
            tree.not_data.append({"path": _rel(path, root), "reason": reason})
    tree.not_data.sort(key=lambda d: d["path"])
    tree.unreadable.sort(key=lambda d: d["path"])


def _own_store(path: Path, found) -> Store | None:
    """The best format whose store ``path`` is one of the files of (a sniff can also match on a
    companion beside the file: that companion is found as a store when the walk reaches it)."""
    here = Path(os.path.abspath(path)).parent
    for fmt, reason in found:
        try:
            # a store's files are beside it: a files() naming ../../etc/passwd names no file of it
            parts = [p for p in fmt.parts(path) if Path(os.path.abspath(p)).parent == here and p.is_file()]
        except Exception:  # a plugin's files() must not break the walk
            continue
        if path in parts:
            main = parts[0] if parts[0].is_file() else path
            return Store(main=main, format=fmt.name, reason=reason, parts=parts, builtin=fmt.builtin)
    return None


def _sqlite_owner(path: Path, claimed: dict) -> Store | None:
    for suffix in _SQLITE_SIDECARS:
        if path.name.endswith(suffix):
            return claimed.get(path.with_name(path.name[: -len(suffix)]))
    return None


def _what(path: Path):
    """Why ``path`` is not data, in words; (True, why) for the file of a store whose other file
    is missing (a dbm.dumb NAME.dir without NAME.dat), which is no store and no junk either."""
    from .detect import lone_companion, looks_like, read_head

    try:
        head = read_head(path)
    except ConverterError:
        head = b""
    lone = lone_companion(path, head)
    if lone and lone[0]:
        return lone
    hint = lone[1] if lone else looks_like(head)
    if not hint:
        return "empty file, no format" if path.stat().st_size == 0 else "no format recognises its content"
    return f"no format recognises its content ({hint})"
