"""The resource budget for pickles, before and after the C unpickler builds anything.

See the comment below: a model of the unpickler's stack checks tuple keys and big ints before
``load()`` hashes them, and shared strings are counted by size after it.
"""

from __future__ import annotations

import collections
import pickletools

from .opcodes import (_EXT_OPS, _FIXED, _INT_LINE_OPS, _KIND, _LEN4S, _LINE, _LINE2, _LONG1, _LONG4, _NOARG,
                      _PERSID_OPS, _SIZE, _STOP, _TUPLE_OPS, _ScanInfo)



# --------------------------------------------------------------------------------------
# The resource budget, before and after the C unpickler builds anything
# --------------------------------------------------------------------------------------
#
# The C unpickler hashes dict keys and set members as it builds them, and CPython hashes a
# tuple by hashing its items, recursively, in C: a tuple nested a million deep crashes the
# process, and a tuple made of shared tuples takes exponential time. Ints hash to their value
# modulo 2**61 - 1, so a dict of many ints sharing one hash takes quadratic time. Neither can
# be stopped once load() runs, so a pickle with more than one tuple opcode, or with many big
# ints, is first walked once more with a model of the unpickler's stack (_model). A pickle
# with no such opcodes (the usual record of scalars) costs nothing extra.

_MODEL_OPS: dict[int, tuple] = {}  # opcode -> (items below the mark it takes, or -1 if no mark; items taken; items made)
for _op in pickletools.opcodes:
    _before = _op.stack_before
    if pickletools.markobject in _before:
        _MODEL_OPS[ord(_op.code)] = (_before.index(pickletools.markobject), 0, len(_op.stack_after))
    else:
        _MODEL_OPS[ord(_op.code)] = (-1, len(_before), len(_op.stack_after))
_MARK = None
_HASHING_OPS = frozenset((0x73, 0x75, 0x64, 0x90, 0x91))  # SETITEM, SETITEMS, DICT, ADDITEMS, FROZENSET
_PAIR_OPS = frozenset((0x75, 0x64))
_GET_OPS = {ord("g"): None, ord("h"): 1, ord("j"): 4}
_PUT_OPS = {ord("p"): None, ord("q"): 1, ord("r"): 4}


def _model(data, label: str, base: int, want_tuples: bool, want_longs: bool) -> None:
    """Walk the stack of one complete pickle as the unpickler would build it, keeping per item
    only the work of hashing it (tuples: 1 + their items' work, and their depth; a big int:
    its size in words). Refuses a tuple past the budget's depth, or whose hash work passes
    both hash_work and the work its own opcodes account for (shared tuples), and ints that
    share hash values past the collision limit."""
    from converter import budget

    limits = budget.active()
    depth_limit, work_limit, collisions = limits.depth, limits.hash_work, limits.collisions
    kinds, sizes, ops = _KIND, _SIZE, _MODEL_OPS
    stack: list = []  # None: a MARK; an int: hash work of a non-tuple; (depth, work): a tuple
    memo: dict = {}
    own = 0  # items of every tuple made so far: the work hashing them costs without sharing
    hashes: dict = {}  # big int hash -> [first value, other values seen]
    where = lambda at: f"{label}: at byte {at + base}"  # noqa: E731
    pos, n = 0, len(data)
    push_step, append = _PUSH_STEP, stack.append
    while pos < n:
        code = data[pos]
        step = push_step[code]
        if step:  # the common opcodes: a scalar (or an empty container) of fixed size
            append(1)
            pos += step
            continue
        if code == 0x8C or code == 0x43:  # SHORT_BINUNICODE, SHORT_BINBYTES
            append(1)
            pos += 2 + data[pos + 1]
            continue
        if code == 0x94:  # MEMOIZE
            if stack:
                memo[len(memo)] = stack[-1]
            pos += 1
            continue
        op = pos
        kind = kinds[code]
        pos += 1
        arg_start = pos
        if kind == _FIXED:
            pos += sizes[code]
        elif kind == _LINE or kind == _LINE2:
            pos = data.index(b"\n", pos) + 1
            if kind == _LINE2:
                pos = data.index(b"\n", pos) + 1
        elif kind != _NOARG:
            width = sizes[code]
            length = int.from_bytes(data[pos:pos + width], "little", signed=kind == _LEN4S)
            arg_start = pos + width
            pos = arg_start + length
        if code == _STOP:
            return
        if code in _TUPLE_OPS:
            if code == 0x74:  # TUPLE: the items since the MARK
                m = len(stack) - 1
                while stack[m] is not _MARK:
                    m -= 1
                items = stack[m + 1:]
                del stack[m:]
            else:
                count = code - 0x84
                items = stack[-count:]
                del stack[-count:]
                if len(items) < count or _MARK in items:
                    raise ValueError("TUPLE1-3 on a MARK")  # the unpickler refuses it too
            depth, work = 1, 1
            for item in items:
                if type(item) is tuple:
                    depth = max(depth, item[0] + 1)
                    work += item[1]
                else:
                    work += item
            own += len(items) + 1
            stack.append((depth, work))
            continue
        if code in _HASHING_OPS:  # keys or members about to be hashed
            if code == 0x73:  # SETITEM
                hashed = stack[-2:-1]
            else:
                m = len(stack) - 1
                while stack[m] is not _MARK:
                    m -= 1
                hashed = stack[m + 1::2] if code in _PAIR_OPS else stack[m + 1:]
            for item in hashed:
                if type(item) is not tuple:
                    continue
                depth, work = item
                if depth_limit is not None and depth > depth_limit:
                    raise budget.refuse(where(op), f"a tuple nested more than {depth_limit:,} deep is a key or "
                                                   f"member (hashing it would crash the interpreter)",
                                        "depth", depth_limit)
                if work_limit is not None and work > work_limit and work > own:
                    raise budget.refuse(where(op), f"a key or member made of shared tuples would take "
                                                   f"{work:,} steps to hash", "hash_work", work_limit)
        if code == _LONG1 or code == _LONG4 or (kind == _LINE and code in _INT_LINE_OPS):
            if kind == _LINE:
                text = data[arg_start:pos - 1].rstrip(b"L")
                size = len(text) // 19 + 1
                value = None
                if want_longs and 18 < len(text) < 1000:
                    try:
                        value = int(text)
                    except ValueError:
                        value = None
            else:
                size = (pos - arg_start) // 8 + 1
                value = int.from_bytes(data[arg_start:pos], "little", signed=True) if want_longs else None
            if value is not None and not -(2**61) < value < 2**61:
                entry = hashes.setdefault(hash(value), [value, 0])
                if value != entry[0]:
                    entry[1] += 1
                    if collisions is not None and entry[1] > collisions:
                        raise budget.refuse(where(op), f"more than {collisions:,} ints that share one "
                                                       f"hash value (hash flooding)", "collisions", collisions)
            stack.append(size)
            continue
        if code in _GET_OPS:
            width = _GET_OPS[code]
            index = int(data[arg_start:pos - 1]) if width is None else int.from_bytes(data[arg_start:pos], "little")
            stack.append(memo.get(index, 1))
            continue
        if code in _PUT_OPS:
            width = _PUT_OPS[code]
            index = int(data[arg_start:pos - 1]) if width is None else int.from_bytes(data[arg_start:pos], "little")
            if stack:
                memo[index] = stack[-1]
            continue
        if code == 0x94:  # MEMOIZE
            if stack:
                memo[len(memo)] = stack[-1]
            continue
        if code == 0x28:  # MARK
            stack.append(_MARK)
            continue
        if code == 0x32:  # DUP
            if stack:
                stack.append(stack[-1])
            continue
        below, taken, made = ops[code]
        if below >= 0:
            m = len(stack) - 1
            while m >= 0 and stack[m] is not _MARK:
                m -= 1
            del stack[max(m - below, 0):]
        elif taken:
            del stack[-taken:]
        if made:
            stack.extend([1] * made)


_PUSH_STEP = [0] * 256
for _op in pickletools.opcodes:
    _c = ord(_op.code)
    if (not _op.stack_before and len(_op.stack_after) == 1 and _op.stack_after[0] is not pickletools.markobject
            and _KIND[_c] in (_NOARG, _FIXED) and _c not in _GET_OPS and _c not in _EXT_OPS
            and _c not in _PERSID_OPS):
        _PUSH_STEP[_c] = 1 + (_SIZE[_c] if _KIND[_c] == _FIXED else 0)


def _check_before_load(data, info: _ScanInfo, label: str, base: int) -> None:
    from converter import budget

    limits = budget.active()
    want_tuples = info.tuples >= 2 and (limits.depth is not None or limits.hash_work is not None)
    want_longs = limits.collisions is not None and info.longs > limits.collisions
    if want_tuples or want_longs:
        try:
            _model(data, label, base, want_tuples, want_longs)
        except (IndexError, ValueError):
            # the model met a stack the real unpickler would refuse too: load() says what
            pass


def _check_after_load(obj, size: int, label: str) -> None:
    """Refuse a value whose strings and bytes, counted once per use, pass its pickle's own
    size by more than the budget's bytes (100 records sharing one 50 MB bytes object would
    write 5 GB). The walk counts containers once per use as the writers do, and stops where
    shared containers alone would make the writers refuse."""
    from converter import budget

    limits = budget.active()
    if limits.bytes is None:
        return
    allowed = size + limits.bytes
    shared_limit = limits.shared
    sized = (str, bytes, bytearray)
    total = distinct = repeated = 0
    seen: set = set()
    stack = [obj]
    pop, push = stack.pop, stack.append
    while stack:
        x = pop()
        kind = type(x)
        if kind in sized:
            total += len(x)
            if total > allowed:
                raise budget.refuse(label, f"its strings and bytes expand to more than {allowed:,} bytes "
                                           f"(shared objects counted once per use)", "bytes", limits.bytes)
            continue
        if kind is dict or kind is collections.OrderedDict or kind is collections.defaultdict:
            items = [*x.keys(), *x.values()]
        elif kind in (list, tuple, set, frozenset, collections.deque):
            items = x
        else:
            continue
        if id(x) in seen:
            repeated += len(items)
            if shared_limit is not None and repeated > shared_limit and repeated > 100 * distinct:
                return  # the writers refuse this by its shared containers, or keep the sharing
        else:
            seen.add(id(x))
            distinct += len(items)
        for item in items:
            if type(item) in sized:
                total += len(item)
            elif type(item) not in _SCALAR_KINDS:
                push(item)
        if total > allowed:
            raise budget.refuse(label, f"its strings and bytes expand to more than {allowed:,} bytes "
                                       f"(shared objects counted once per use)", "bytes", limits.bytes)


_SCALAR_KINDS = frozenset((int, float, bool, type(None), complex))
