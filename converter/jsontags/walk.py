"""The iterative walker that encode, plain and decode share (no recursion limit, cycles
refused, shared references counted against the budget)."""

from __future__ import annotations

from converter.budget import SHARED_FACTOR as EXPANSION_FACTOR, active as _active_budget
from converter.errors import UnsupportedValueError

from .text import _to_text, _where


# --- the shared iterative walker ----------------------------------------------
#
# encode, plain and decode are written as loops over an explicit stack so that
# nesting depth is limited by memory, not by Python's recursion limit.  A
# container pushes a "finish" item first and then one item per child; the
# children are converted into slots of a list (or dict) and the finish item,
# popped after all of them, builds the result and stores it in its own slot.

_FINISH = object()


_SCALARS = frozenset((str, int, float, bool, type(None)))


# The budget for shared references (a value whose containers are not shared never meets it):
# the items written again for shared containers may exceed the budget's ``shared`` limit only
# while they stay within SHARED_FACTOR times the value's distinct items. The pickle writer uses
# the same rule, as fast-mode pickling also writes a shared container once per use.


def expansion_message(name: str, distinct: int, repeated: int) -> str:
    """The error for a value whose shared references expand past the budget."""
    limit = _active_budget().shared
    return (f"{_where(name)}shared references expand to more than {distinct + repeated:,} values "
            f"({distinct:,} distinct), and this output writes each use in full: refused (the limit is "
            f"{limit:,} repeated values and {EXPANSION_FACTOR} times the distinct ones; "
            f"--budget shared=N raises it)")


class _Walk:
    def __init__(self, name, convert):
        self.name = name
        self.convert = convert  # convert(value, slots, slot): store a leaf's result, or enter() a container
        self.stack = []
        self.active = set()  # ids of containers being converted: seeing one again is a cycle
        # A container met again after it was converted is shared: JSON has no references, so
        # it is written again in full. Shared references can make a tiny pickle expand to
        # 10**12 values, so the items written again are counted against a budget (see
        # budget.py); the ids stay valid as the value being walked holds every container.
        self.done = set()
        self.distinct = 0  # items of the containers met for the first time
        self.repeated = 0  # items written again because their container is shared
        limit = _active_budget().shared
        self.limit = limit if limit is not None else float("inf")

    def enter(self, value, build, slots, slot, children):
        """Convert ``children`` into a list of results, then store build(results) in slots[slot]."""
        key = id(value)
        if key in self.active:
            raise UnsupportedValueError(f"{_where(self.name)}cyclic value cannot be written as JSON")
        if key in self.done:
            self.repeated += len(children)
            if self.repeated > self.limit and self.repeated > EXPANSION_FACTOR * self.distinct:
                raise UnsupportedValueError(expansion_message(self.name, self.distinct, self.repeated))
        else:
            self.distinct += len(children)
        self.active.add(key)
        results = [None] * len(children)
        push = self.stack.append
        push((_FINISH, key, build, results, slots, slot))
        convert = self.convert
        for i, item in enumerate(children):
            if type(item) in _SCALARS:
                convert(item, results, i)  # a leaf: no need for a stack item
            else:
                push((item, results, i))

    def run(self, value):
        root = [None]
        stack = self.stack
        stack.append((value, root, 0))
        pop = stack.pop
        convert = self.convert
        while stack:
            item = pop()
            if item[0] is _FINISH:
                _, key, build, results, slots, slot = item
                self.active.discard(key)
                self.done.add(key)
                slots[slot] = build(results)
            else:
                convert(item[0], item[1], item[2])
        return root[0]


def _canonical_sort(items: list) -> list:
    """Sort converted set members by their compact JSON text (stable output across runs)."""
    if len(items) > 1:
        items.sort(key=_to_text)
    return items


def _same(results):
    """The build of a list: its converted items as they are."""
    return results
