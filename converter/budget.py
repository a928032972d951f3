"""The resource budget: how much work and memory one input may ask for.

Every size, count, depth or offset that comes from a file is a claim. Readers, decoders and
writers check a claim against the active budget *before* acting on it (allocating, hashing,
converting), and refuse it with a BudgetError that names the limit and how to raise it.

The defaults are far above what a legitimate file of a million records asks for. For a
trusted file, raise them (or lift one with ``none``) in one of two ways, both read as
``name=value`` pairs separated by commas, with K/M/G suffixes (powers of 1024):

* the environment: ``CONVERTER_BUDGET="depth=5000,bytes=8G"``;
* the command line: ``convert IN OUT --budget "depth=5000,bytes=8G"`` (on top of the
  environment), or ``Options(budget=Budget(...))`` / ``budget.using(...)`` from Python.

The budget in force is held in a context variable, so code deep in a reader (the safe
unpickler's wrappers, the JSON tag decoder) consults it without an argument threaded
through every plugin.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from dataclasses import dataclass

from .errors import ConverterError

ENV = "CONVERTER_BUDGET"


class BudgetError(ConverterError):
    """An input asked for more than the resource budget allows (exit status 1)."""


@dataclass(frozen=True)
class Budget:
    """Limits on what one input may ask for. ``None`` lifts a limit."""

    #: bytes the records of one input may add up to beyond the input's own size: shared
    #: ``bytes``/``str`` objects are counted once per use, records that overlap in a file
    #: once per record
    bytes: int | None = 2**30
    #: items a constructor may make from a lazy iterable (``list(range(n))``, ``deque``...)
    items: int | None = 10_000_000
    #: items written again because a container is shared (JSON and pickle outputs write each
    #: use in full); refused only where they also pass 100 times the distinct items
    shared: int | None = 1_000_000
    #: nesting depth of a value that will be hashed (a tuple as a dict key or set member)
    depth: int | None = 1_000
    #: tuples visited to hash one value (a tuple built from shared tuples)
    hash_work: int | None = 10_000_000
    #: decimal digits of one integer (int <-> text conversion is superlinear)
    digits: int | None = 100_000
    #: size argument of an allowlisted constructor (``bytearray(n)``, ``bytes(n)``)
    alloc: int | None = 2**28
    #: keys of one dict, set or key index that share one hash value (hash flooding)
    collisions: int | None = 1_000

    @classmethod
    def parse(cls, text: str, base: "Budget | None" = None, source: str = "--budget") -> "Budget":
        """``"depth=5000, bytes=8G, digits=none"`` -> a Budget (fields not named come from ``base``)."""
        base = base or cls()
        names = {f.name for f in dataclasses.fields(cls)}
        changes = {}
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            name, eq, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if not eq or name not in names:
                raise ConverterError(
                    f"{source} {part!r}: expected name=value with a name among {', '.join(sorted(names))}")
            changes[name] = _parse_size(value, f"{source} {part!r}")
        return dataclasses.replace(base, **changes)

    def describe(self) -> str:
        return ", ".join(f"{f.name}={_show(getattr(self, f.name))}" for f in dataclasses.fields(self))


# how many times its distinct items a value's repeated items must also pass (see ``shared``)
SHARED_FACTOR = 100

_SUFFIX = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def _parse_size(value: str, where: str) -> int | None:
    low = value.lower()
    if low in ("none", "off", "unlimited"):
        return None
    factor = 1
    if low[-1:] in _SUFFIX:
        factor, low = _SUFFIX[low[-1]], low[:-1]
    low = low.replace("_", "")
    if not low.isdigit() or len(low) > 30:
        raise ConverterError(f"{where}: {value!r} is not a number (or none), e.g. 5000, 64M, 2G")
    return int(low) * factor


def _show(value) -> str:
    return "none" if value is None else f"{value}"


_FROM_ENV: list = []


def from_env() -> Budget:
    """The defaults, with ``CONVERTER_BUDGET`` applied (read once)."""
    if not _FROM_ENV:
        _FROM_ENV.append(Budget.parse(os.environ.get(ENV, ""), Budget(), ENV))
    return _FROM_ENV[0]


_ACTIVE: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("converter_budget", default=None)


def active() -> Budget:
    """The budget in force: the one set by ``using``, else the environment's."""
    return _ACTIVE.get() or from_env()


@contextlib.contextmanager
def using(budget: Budget | None):
    """Make ``budget`` the active one inside the block (None: leave it as it is)."""
    if budget is None:
        yield active()
        return
    token = _ACTIVE.set(budget)
    try:
        yield budget
    finally:
        _ACTIVE.reset(token)


def refuse(what: str, claim: str, name: str, limit) -> BudgetError:
    """The error for a claim past limit ``name``: says how to raise it."""
    where = f"{what}: " if what else ""
    return BudgetError(
        f"{where}{claim}, past the resource budget ({name}={limit:,}); if the input is trusted, "
        f"raise it with --budget {name}=N or {ENV}={name}=N (none lifts it)")


_SIZED = (str, bytes)


def record_size(record) -> int:
    """A record as a store gave it: the length of its str/bytes key and value (a table row's
    fields, a column DEFAULT included), 8 for anything else."""
    key, value = record
    n = len(key) if type(key) in _SIZED else 8
    if type(value) is dict:
        for v in value.values():
            n += len(v) if type(v) in _SIZED else 8
    else:
        n += len(value) if type(value) in _SIZED else 8
    return n


def stored_bytes(records, path, size: int):
    """The records of a store of ``size`` bytes, held to the ``bytes`` budget: together they may
    pass the file's own size by at most ``bytes``. A store cannot hold more than its size unless
    its records overlap (dbm.dumb index entries or gdbm slots aimed at one region, a SQLite
    column DEFAULT that every older row shares), which is how a few MB expand to 100 GB."""
    limit = active().bytes
    if limit is None:
        yield from records
        return
    allowed, total = size + limit, 0
    for record in records:
        key, value = record
        if type(key) is bytes and type(value) is bytes:  # a key/value store's: no call per record
            total += len(key) + len(value)
        else:
            total += record_size(record)
        if total > allowed:
            raise refuse(str(path), f"its records add up to more than {allowed:,} bytes, far more than the "
                                    f"{size:,} bytes of the file (records that overlap in it, or a SQLite column "
                                    f"DEFAULT that every row shares)", "bytes", limit)
        yield record


def naming(exc: BudgetError, path) -> BudgetError:
    """``exc`` with the input's name in front, unless its message already names it."""
    name = str(path)
    text = str(exc)
    if name in text:
        return exc
    return BudgetError(f"{name}: {text}")


# --- checks that readers and decoders share ---------------------------------------------

def check(name: str, amount: int, what: str, claim: str) -> None:
    """Refuse ``amount`` if it passes limit ``name`` of the active budget."""
    limit = getattr(active(), name)
    if limit is not None and amount > limit:
        raise refuse(what, claim.format(amount=amount), name, limit)


def check_int_digits(n: int, what: str = "") -> None:
    """Refuse an int with more decimal digits than ``digits`` (before any text conversion)."""
    limit = active().digits
    # bit_length * log10(2) underestimates by at most one digit
    if limit is not None and n.bit_length() * 0.30103 > limit + 1:
        raise refuse(what, f"an integer of about {int(n.bit_length() * 0.30103):,} digits", "digits", limit)


def check_digit_text(length: int, what: str = "", *, cut: bool = False) -> None:
    """Refuse decimal text of ``length`` digits past ``digits`` (before int() of it).

    ``cut``: the text is the part of a number read so far, so its length is a lower bound.
    """
    limit = active().digits
    if limit is not None and length > limit + 1:  # a sign
        raise refuse(what, f"an integer of {'more than ' if cut else ''}{length:,} digits", "digits", limit)


_HASH_NESTS = (tuple, frozenset)


def check_hashable(value, what: str = "") -> None:
    """Refuse a value whose hashing would recurse past ``depth`` or visit past ``hash_work``
    tuples (CPython hashes nested tuples recursively in C: deep ones crash it, shared ones
    take exponential time). Cheap for anything but a tuple."""
    if type(value) is not tuple:
        return
    budget = active()
    depth_limit, work_limit = budget.depth, budget.hash_work
    work = 0
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        obj, depth = pop()
        work += 1
        if depth_limit is not None and depth > depth_limit:
            raise refuse(what, f"a tuple to be hashed is nested more than {depth_limit:,} deep",
                         "depth", depth_limit)
        if work_limit is not None and work > work_limit:
            raise refuse(what, f"hashing a tuple would visit more than {work_limit:,} tuples "
                               f"(shared references)", "hash_work", work_limit)
        for item in obj:
            if type(item) is tuple:
                push((item, depth + 1))


def check_collisions(members, what: str = "") -> None:
    """Refuse members of one dict or set that share hash values past ``collisions`` (hash
    flooding: int, float and tuple hashes are not randomized). str and bytes members are
    skipped: their hashes are keyed per process."""
    limit = active().collisions
    if limit is None or len(members) <= limit:
        return
    fixed = [m for m in members if type(m) is not str and type(m) is not bytes]
    if len(fixed) <= limit:
        return
    hashes = set()
    add = hashes.add
    try:
        for m in fixed:
            add(hash(m))
    except TypeError:
        return  # an unhashable member: the caller's own error says so
    if len(fixed) - len(hashes) > limit:
        raise refuse(what, f"{len(fixed) - len(hashes):,} keys share hash values with others "
                           f"(hash flooding)", "collisions", limit)
