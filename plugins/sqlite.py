"""SQLite databases: any table as a source; a real table (or a key/value table) as a sink.

Reading: the one user table (or ``--table``). A table of columns (key, value) is a key/value
store: the ``JSON TEXT`` value column this tool writes is decoded from tagged JSON, and a BLOB
value column (sqlitedict's layout, Python 3.13's dbm.sqlite3) goes through the value codecs, so
pickled values are unpickled safely. Any other table gives one record per row: the primary key
(or the rowid) is the record key and the row is a dict of every column.

Writing, ``--layout auto`` makes a real table when every record's value is a dict of scalars
(str keys): one column per field, added as new fields appear, declared INTEGER, REAL, TEXT,
BLOB, BOOLEAN or (for nested values) JSON TEXT; the record key goes in the primary-key column
``--pk`` (default ``key``; see ``_Table``). date, time and datetime fields are ISO-8601 text in
DATE, TIME and DATETIME columns. Otherwise (or ``--layout kv``, or when a later record cannot be
a row: the conversion starts again and says why) a key/value table whose values are tagged JSON
text. A value that does not fit its column's type is an error, never a silent conversion
(except ints and floats, which share a widened column exactly); fields added to hold the record
key are reported.
"""

from __future__ import annotations

import os
import re
from itertools import chain, islice
from pathlib import Path

from converter import Format, hookimpl
from converter.errors import ChoiceNeededError, ConverterError, FormatError, LayoutFallback, UnsupportedValueError
from converter.plugins.dbm import (
    SQLITE_MAGIC, describe_sqlite, is_dbm_sqlite3, quote_ident, read_dict_table, ro_connection, sqlite_tables,
)

SAMPLE = 100
INT64 = (-(2**63), 2**63 - 1)
JSON_TYPE = "JSON TEXT"


def _sniff(head, path):
    if not head.startswith(SQLITE_MAGIC):
        return None
    try:
        tables = sqlite_tables(path)
    except ConverterError:
        return "SQLite database (unreadable schema)"
    return f"SQLite database, tables: {', '.join(tables) or '(none)'}"


def _pick_table(path, options, tables):
    if options.table:
        if options.table not in tables:
            raise FormatError(f"{path}: no table {options.table!r}; tables: {list(tables)}")
        return options.table
    if len(tables) == 1:
        return next(iter(tables))
    if not tables:
        raise FormatError(f"{path}: the database has no tables")
    raise ChoiceNeededError(f"{path}: several tables {list(tables)}; pick one with --table", "--table", tables)


def _read(path, options):
    tables = sqlite_tables(path)
    table = _pick_table(path, options, tables)
    cols = tables[table]
    names = [c[0].lower() for c in cols]
    if names == ["key", "value"]:
        value_type = (cols[1][1] or "").upper()
        if "JSON" in value_type:
            yield from _read_json_kv(path, table)
            return
        from converter.codecs import decode_records
        from converter.registry import get_registry

        records = read_dict_table(path, table) if is_dbm_sqlite3({table: cols}) and table == "Dict" else _rows_kv(path, table)
        records = _within_size(records, path)
        keys = table == "Dict"
        yield from decode_records(records, get_registry(), options, f"{path} table {table}", keys=keys)
        return
    yield from _within_size(_read_rows(path, table, cols), path)


def _within_size(records, path):
    """Rows cannot hold more than the file unless they share a column DEFAULT (budget.stored_bytes)."""
    from converter import budget

    size = sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
    return budget.stored_bytes(records, path, size)


def _rows_kv(path, table):
    with ro_connection(path) as con:
        for key, value in _query(con, path, table, f"SELECT key, value FROM {quote_ident(table)}"):
            if isinstance(value, str):
                value = value.encode("utf-8")
            elif not isinstance(value, bytes):  # SQLite lets any column hold any type
                raise FormatError(
                    f"{path}: table {table} record {key!r} has a {'NULL' if value is None else type(value).__name__} "
                    f"value; a (key, value) table is read as a key/value store whose values are BLOB or TEXT")
            yield key, value


def _query(con, path, table, sql):
    import sqlite3
    try:
        yield from con.execute(sql)
    except sqlite3.DatabaseError as exc:
        raise FormatError(f"{path}: cannot read table {table}: {exc}") from None
    except UnicodeDecodeError as exc:  # sqlite3 decodes TEXT as UTF-8 and raises this, not a DatabaseError
        raise FormatError(f"{path}: table {table} holds TEXT that is not UTF-8 ({exc.reason} at byte {exc.start} "
                          f"of a value)") from None


def _read_json_kv(path, table):
    from converter.jsontags import loads

    with ro_connection(path) as con:
        for key, text in _query(con, path, table, f"SELECT key, value FROM {quote_ident(table)}"):
            if text is None:
                raise FormatError(f"{path} table {table} record {key!r}: the value is NULL, not JSON text")
            try:
                # a column declared JSON without TEXT has numeric affinity: 5 is stored as an INTEGER
                yield key, text if type(text) in (int, float) else loads(text)
            except FormatError as exc:
                raise FormatError(f"{path} table {table} record {key!r}: {exc}") from None


def _columns(con, path, table) -> list:
    """PRAGMA table_info rows of every column a row has, generated ones included (table_info
    leaves them out: a STORED or VIRTUAL generated column would be silently dropped). The
    hidden columns of a virtual table are not the row's."""
    import sqlite3

    try:
        rows = list(con.execute(f"PRAGMA table_xinfo({quote_ident(table)})"))
    except sqlite3.DatabaseError:  # SQLite before 3.26
        return list(_query(con, path, table, f"PRAGMA table_info({quote_ident(table)})"))
    return [r[:6] for r in rows if r[6] in (0, 2, 3)]


def _read_rows(path, table, cols):
    with ro_connection(path) as con:
        info = _columns(con, path, table)
        pks = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        colnames = [r[1] for r in info]
        decoders = [_decoder(r[2]) for r in info]
        without_rowid = not pks or _without_rowid(con, path, table)
        q = ", ".join(quote_ident(c) for c in colnames)
        if pks:
            order = ", ".join(quote_ident(c) for c in pks) if without_rowid and pks else "rowid"
            sql = f"SELECT {q} FROM {quote_ident(table)} ORDER BY {order}"
            keyidx = [colnames.index(c) for c in pks]
        else:
            sql = f"SELECT rowid, {q} FROM {quote_ident(table)} ORDER BY rowid"
            keyidx = None
        for row in _query(con, path, table, sql):
            if keyidx is None:
                key, row = row[0], row[1:]
            else:
                key = row[keyidx[0]] if len(keyidx) == 1 else tuple(row[i] for i in keyidx)
            record = {}
            for name, dec, value in zip(colnames, decoders, row):
                try:
                    record[name] = dec(value)
                except FormatError as exc:
                    raise FormatError(f"{path} table {table} record {key!r} column {name}: {exc}") from None
            yield key, record


def _without_rowid(con, path, table):
    quoted = "'" + table.replace("'", "''") + "'"
    sql = next(_query(con, path, table, f"SELECT sql FROM sqlite_master WHERE name = {quoted}"), None)
    return bool(sql and sql[0] and "WITHOUT ROWID" in sql[0].upper())


def _decoder(declared):
    declared = (declared or "").upper()
    if "JSON" in declared:
        from converter.jsontags import loads

        # a column declared JSON without TEXT has numeric affinity: 5 is stored as an INTEGER
        return lambda v: v if v is None or type(v) in (int, float) else loads(v)
    if declared == "BOOLEAN":
        return lambda v: v if v is None else bool(v)
    if declared in _ISO_TYPES:
        return _iso_decoder(declared)
    return lambda v: v


def _iso_decoder(declared):
    """ISO-8601 text in a DATE/TIME/DATETIME column back to the Python type that wrote it; any
    other value (another program's format, a number) is read as it is stored."""
    import datetime

    parse = getattr(datetime, declared.lower() if declared != "DATETIME" else "datetime").fromisoformat

    def decode(v):
        if type(v) is not str:
            return v
        try:
            value = parse(v)
        except ValueError:
            return v
        return value if value.isoformat() == v else v

    return decode


# -- writing ------------------------------------------------------------------------------------

def _is_scalar(v):
    return v is None or type(v) in (bool, int, float, str, bytes) or _iso_type(v) is not None


_ISO_TYPES = ("DATETIME", "DATE", "TIME")


def _iso_type(v):
    """DATETIME, DATE or TIME for a value that ISO-8601 text holds exactly (no zone name, no
    fold), else None. Such columns hold ``isoformat()`` text, which SQLite's date functions read."""
    import datetime

    t = type(v)
    if t is datetime.datetime or t is datetime.time:
        if v.fold or (v.tzinfo is not None and type(v.tzinfo) is not datetime.timezone):
            return None
        return "DATETIME" if t is datetime.datetime else "TIME"
    return "DATE" if t is datetime.date else None


def _table_like(value):
    return type(value) is dict and all(isinstance(k, str) for k in value) and all(_is_scalar(v) for v in value.values())


def _column_type(value):
    t = type(value)
    if t is bool:
        return "BOOLEAN"
    if t is int:
        return "INTEGER" if INT64[0] <= value <= INT64[1] else JSON_TYPE
    if t is float:
        return "REAL"
    if t is str:
        return "TEXT"
    if t is bytes:
        return "BLOB"
    return _iso_type(value) or JSON_TYPE


def _fits(declared, value):
    """The stored form of ``value`` for a column declared ``declared``, or raise ValueError."""
    if value is None:
        return None
    t = type(value)
    if declared == JSON_TYPE:
        from converter.jsontags import dumps

        return dumps(value)
    if declared == "":
        if t in (int, float, str, bytes) and not (t is int and not INT64[0] <= value <= INT64[1]):
            return value
    elif _column_type(value) == declared:
        return value.isoformat() if declared in _ISO_TYPES else value
    raise ValueError(f"{t.__name__} value in a column declared {declared or 'without a type'}")


def _write(path, records, options):
    import sqlite3
    records = iter(records)
    sample = list(islice(records, SAMPLE))
    layout = options.layout
    if layout not in ("auto", "table", "kv"):
        raise UnsupportedValueError(f"--layout must be auto, table or kv, not {layout!r}")
    why = ""
    if layout == "auto" and options.pk is not None:  # --pk asks for a table, as sqlite-utils makes
        layout, why = "table", " (--pk)"
    if layout == "auto":
        misfit = next((k for k, v in sample if not _table_like(v)), _NONE)
        layout = "table" if sample and misfit is _NONE else "kv"
        if misfit is not _NONE:
            why = f" (auto: record {misfit!r} is not a dict of scalar fields)"
    # a file name that is not UTF-8 names a table whose undecodable bytes become U+FFFD
    table = options.table or Path(path).stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace") or "data"
    con = sqlite3.connect(os.fsencode(path), isolation_level=None)  # bytes: any file name
    try:
        # the output is a temporary file until it is renamed into place, so bulk settings are safe
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        # a 16 MB page cache (default 2 MB) keeps a big primary-key index in memory while rows
        # arrive in random key order: a third less time for a million rows, bounded memory
        con.execute("PRAGMA cache_size = -16384")
        con.execute("BEGIN")
        if layout == "table":
            try:
                _Table(con, table, options, path).write(chain(sample, records))
            except (UnicodeEncodeError, sqlite3.Warning) as exc:  # a field name or a str value with a lone surrogate
                if isinstance(exc, sqlite3.Warning) and "wrong type" not in str(exc):
                    raise  # (Python 3.10's sqlite3 says "SQL is of wrong type" for a name it cannot encode)
                problem = "holds a string with a lone surrogate, which a SQLite TEXT column or name cannot hold"
                if options.layout == "auto" and options.pk is None:
                    raise LayoutFallback(f"{path}: a record {problem}", store=str(path),
                                         why=f"a record {problem}") from None
                raise UnsupportedValueError(f"{path}: a record {problem}; use --layout kv, which tags it") from None
        else:
            _write_kv(con, table, chain(sample, records), path)
        con.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise ConverterError(f"{path}: SQLite refused the data: {exc}") from None
    finally:
        con.close()
    options.note(f"{path}: table {table!r}, {layout} layout{why}")


_NONE = object()


def _key_type(key):
    if type(key) is bool or not _is_scalar(key) or key is None:
        return None
    return _column_type(key)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _write_kv(con, table, records, path):
    from converter.jsontags import dumps

    con.execute(f'CREATE TABLE {quote_ident(table)} ("key" PRIMARY KEY NOT NULL, "value" {JSON_TYPE} NOT NULL)')
    sql = f"INSERT OR REPLACE INTO {quote_ident(table)} (\"key\", \"value\") VALUES (?, ?)"

    def rows():
        for key, value in records:
            if type(key) is not str and _key_type(key) in (None, JSON_TYPE):  # a str always fits
                raise UnsupportedValueError(
                    f"{path}: key {key!r} ({type(key).__name__}) cannot be a SQLite key as it is; "
                    f"use json or jsonl output, which hold any key"
                )
            if type(key) is str and not key.isascii() and _LONE_SURROGATE.search(key):
                raise UnsupportedValueError(
                    f"{path}: key {key!r} holds a lone surrogate, which SQLite text (UTF-8) cannot hold; "
                    f"use jsonl output, which holds any key")
            try:
                text = dumps(value)
            except UnsupportedValueError as exc:  # a cycle, shared references that expand...
                raise UnsupportedValueError(f"{path}: record {key!r}: {exc}") from None
            yield key, text

    con.executemany(sql, rows())


class _Table:
    """Records as the rows of one table: a column per field, added as fields appear.

    The record key goes in the primary-key column: ``--pk FIELD`` makes an existing field the
    key (a record whose key differs has it replaced by the field, reported; two records with one
    value are refused), and by default a ``key`` column (added to records without one, reported).
    When records have a ``key`` field of their own that is not their key and the keys are ints
    (a JSON array, JSON Lines without keys), the key is the rowid and no column is added. An int
    column that meets a float (or a REAL column an int) is widened to a column without a type,
    where SQLite keeps each value's own type, so both read back exactly. With ``--layout auto``
    a record that cannot be a row makes the conversion start again with ``--layout kv``
    (``LayoutFallback``), saying why.
    """

    def __init__(self, con, table, options, path):
        self.con, self.table, self.options, self.path = con, table, options, path
        self.qt = quote_ident(table)
        self.pk_given = options.pk is not None
        self.pk = options.pk or "key"
        self.auto = options.layout == "auto" and not self.pk_given  # --pk: a table or an error
        self.columns: dict[str, str] = {}  # name -> declared type, in table order
        self.rowid = False  # the record key is the rowid: no key column
        self.created = False
        self.batch: list = []  # rows as lists in the order of the INSERT (flushed before a column changes)
        self.replace = True  # INSERT OR REPLACE: a repeated record key was counted by the core
        self.added_key = self.present = self.rows = self.replaced = 0
        self.first_replaced = None
        self.widened: list[str] = []
        # The fast path: a record with the same fields, in the same order and of the same types, as
        # one that took the general path and filled every column directly (no JSON column) needs
        # only its ints range-checked. shape: (fields, value types, key type, key first in the row,
        # int positions in the row), or None.
        self.shape = None

    def lossy(self, key, change: str):
        """An automatic table that would change a record: not made when ``--verify`` asks for every record."""
        if self.auto and self.options.lossless:
            raise LayoutFallback(f"{self.path}: record {key!r} {change}", store=str(self.path),
                                 why=f"as a row, record {key!r} {change}, and every record must read back exactly")

    def refuse(self, key, problem: str, advice: str = "use --layout kv"):
        if self.pk_given:  # --pk cannot go with --layout kv
            advice = advice.replace("use --layout kv", "leave out --pk and use --layout kv")
        message = f"{self.path}: record {key!r} {problem}; {advice}"
        if self.auto:
            raise LayoutFallback(message, store=str(self.path), why=f"record {key!r} {problem}")
        raise UnsupportedValueError(message)

    def flush(self):
        if not self.batch:
            return
        import sqlite3

        names = (["rowid"] if self.rowid else []) + list(self.columns)
        verb = "INSERT OR REPLACE" if self.replace else "INSERT"
        sql = f"{verb} INTO {self.qt} ({', '.join(map(quote_ident, names))}) VALUES ({', '.join('?' * len(names))})"
        try:
            self.con.executemany(sql, self.batch)
        except sqlite3.IntegrityError:
            if self.replace:
                raise
            raise UnsupportedValueError(
                f"{self.path}: --pk {self.pk}: two records have the same {self.pk} value, and a primary key holds "
                f"each value once; choose a field that is unique, or leave out --pk") from None
        self.batch = []

    def write(self, records):
        shape_fast = self._fast
        for key, value in records:
            row = shape_fast(key, value) if self.shape is not None else None
            if row is None:
                row = self._general(key, value)
            self.batch.append(row)
            self.rows += 1
            if len(self.batch) >= 1000:
                self.flush()
        self.flush()
        self._finish()

    def _fast(self, key, value):
        shape = self.shape
        if type(value) is not dict or type(key) is not shape[2] or tuple(value) != shape[0] \
                or tuple(map(type, value.values())) != shape[1] or not _STR_ONLY.issuperset(map(type, value)):
            return None
        if shape[3]:
            row = [key, *value.values()]
        else:
            row = list(value.values())
            if row[0] == key:
                row[0] = key  # the key itself, as the general path writes it (0.0 for -0.0)
            elif self.pk_given and type(row[0]) is not float:
                self._replaced(key, row[0])
            else:
                return None  # the general path says why
        for i in shape[4]:
            if not INT64[0] <= row[i] <= INT64[1]:
                return None  # nor is this one for the fast path
        self.present += len(row) - self.rowid
        self.added_key += shape[3] and not self.rowid
        return row

    def _replaced(self, key, new_key):
        self.replaced += 1
        self.first_replaced = self.first_replaced or (key, new_key)
        if self.replace:
            self.flush()
            self.replace = False  # keys now come from the field: the table must find repeats itself

    def _create(self, key, value):
        if self.pk_given:
            if self.pk not in value:
                raise UnsupportedValueError(f"{self.path}: record {key!r} has no field {self.pk!r} for --pk {self.pk}")
            ktype = _key_type(value[self.pk])
            if ktype in (None, JSON_TYPE):
                raise UnsupportedValueError(f"{self.path}: record {key!r} field {self.pk!r} = {value[self.pk]!r} "
                                            f"cannot be a SQLite primary key; choose another --pk")
        else:
            own = "key" in value and (value["key"] != key or type(value["key"]) is not type(key))
            if own and type(key) is int and INT64[0] <= key <= INT64[1]:
                self.rowid = True  # the records' own "key" field stays theirs
            ktype = _key_type(key)
        if self.rowid:
            first = next(iter(value))
            self.columns[first] = _column_type(value[first]) if value[first] is not None else ""
            self.con.execute(f"CREATE TABLE {self.qt} ({quote_ident(first)} {self.columns[first]})")
        else:
            if ktype in (None, JSON_TYPE):
                self.refuse(key, f"has a key of type {type(key).__name__}, which cannot be a SQLite primary key")
            self.con.execute(f"CREATE TABLE {self.qt} ({quote_ident(self.pk)} {ktype} PRIMARY KEY NOT NULL)")
            self.columns[self.pk] = ktype
        self.created = True

    def _general(self, key, value):
        pk, columns = self.pk, self.columns
        if type(value) is not dict or not all(isinstance(k, str) for k in value):
            self.refuse(key, f"is a {type(value).__name__}, not a dict with string keys, so it cannot be a row "
                             f"of table {self.table!r}")
        if not self.created:
            self._create(key, value)
        row = {}
        if self.rowid:
            if type(key) is not int or not INT64[0] <= key <= INT64[1]:
                self.refuse(key, f"has a key of type {type(key).__name__}, and this table keeps int keys as rowids")
        elif self.pk_given:
            if pk not in value:
                raise UnsupportedValueError(f"{self.path}: record {key!r} has no field {pk!r} for --pk {pk}")
            if value[pk] != key or type(value[pk]) is not type(key):
                if _key_type(value[pk]) != columns[pk]:
                    raise UnsupportedValueError(
                        f"{self.path}: record {key!r} field {pk!r} = {value[pk]!r} does not fit the {columns[pk]} "
                        f"primary key; choose another --pk")
                self._replaced(key, value[pk])
            row[pk] = value[pk]
        else:
            if pk in value and (value[pk] != key or type(value[pk]) is not type(key)):
                self.refuse(key, f"has field {pk!r} = {value[pk]!r}, not its key",
                            "choose the key column with --pk NAME, or use --layout kv")
            if pk not in value:
                self.lossy(key, f"would gain a field {pk!r} holding its key")
                self.added_key += 1
            row[pk] = key
        for field, v in value.items():
            if field == pk and not self.rowid:
                continue
            if field not in columns:
                if self.rows:
                    self.lossy(key, f"brings a new field {field!r}, which the rows before it would read back as None")
                if v is None and not (self.auto and self.options.lossless):
                    continue  # typed when a value first appears; a missing column reads back as absent
                self.flush()
                columns[field] = _column_type(v)
                self.con.execute(f"ALTER TABLE {self.qt} ADD COLUMN {quote_ident(field)} {columns[field]}")
            try:
                row[field] = _fits(columns[field], v)
            except UnsupportedValueError as exc:  # from a JSON TEXT field: a cycle, shared references...
                raise UnsupportedValueError(f"{self.path}: record {key!r} field {field!r}: {exc}") from None
            except ValueError as exc:
                if {columns[field], type(v)} <= {"INTEGER", "REAL", int, float} and \
                        (type(v) is float or INT64[0] <= v <= INT64[1]):  # a bigger int is JSON text, no number
                    self._widen(field)
                    row[field] = v
                else:
                    self.refuse(key, f"field {field!r}: {exc}", "use --layout kv to keep every value exactly")
        if len(row) < len(columns):
            self.lossy(key, "lacks fields the rows before it have, which would read back as None")
        self.present += len(row)
        out = ([key] if self.rowid else []) + [row.get(n) for n in columns]
        self.shape = _shape(key, value, row, columns, pk, self.rowid)
        return out

    def _widen(self, field):
        """Re-declare ``field`` without a type (SQLite keeps each value's own type): the table is
        copied once, inside the transaction, with the rows so far."""
        self.flush()
        self.columns[field] = ""
        self.widened.append(field)
        tmp = quote_ident(f"{self.table} (widening)")  # the output is a fresh file: no such table
        defs = ", ".join(
            f"{quote_ident(n)} {t} PRIMARY KEY NOT NULL" if n == self.pk and not self.rowid else f"{quote_ident(n)} {t}".rstrip()
            for n, t in self.columns.items())
        names = ", ".join(map(quote_ident, self.columns))
        lead = "rowid, " if self.rowid else ""
        self.con.execute(f"CREATE TABLE {tmp} ({defs})")
        self.con.execute(f"INSERT INTO {tmp} ({lead}{names}) SELECT {lead}{names} FROM {self.qt}")
        self.con.execute(f"DROP TABLE {self.qt}")
        self.con.execute(f"ALTER TABLE {tmp} RENAME TO {self.qt}")

    def _finish(self):
        options, pk = self.options, self.pk
        if not self.created:
            self.con.execute(f"CREATE TABLE {self.qt} ({quote_ident(pk)} TEXT PRIMARY KEY NOT NULL)")
        missing = self.rows * len(self.columns) - self.present
        if missing:
            options.note(
                f"{missing} field(s) absent from some records (or always None) read back as None, since every row "
                f"has every column (use --layout kv to keep records unchanged)"
            )
        if self.added_key:
            options.note(
                f"added column {pk!r} holding the record key to {self.added_key} record(s) that had no such field "
                f"(they read back with it; use --layout kv to keep records unchanged)"
            )
        if self.rowid:
            options.note(f"{self.path}: the records have a 'key' field of their own: their keys are the table's rowid")
        if self.replaced:
            old, new = self.first_replaced
            options.note(f"{self.path}: --pk {pk}: {self.replaced} record key(s) replaced by field {pk!r} "
                         f"(the first: {old!r} -> {new!r})")
        for field in self.widened:
            options.note(f"{self.path}: column {field!r} holds both ints and floats, so it is declared without a "
                         f"type, where SQLite keeps each value's own type")


_STR_ONLY = frozenset((str,))
_DIRECT = frozenset(("INTEGER", "REAL", "TEXT", "BLOB", "BOOLEAN", ""))  # columns that store values as they are


def _shape(key, value, row, columns, pk, rowid=False):
    """The fast-path shape of a record that the general path just wrote (see _Table), or None."""
    names = list(columns)
    fields = tuple(value)
    if len(row) != len(names) or not all(columns[n] in _DIRECT for n in names):
        return None
    if rowid:
        if list(fields) != names:
            return None
        first = True  # the key, first in the row, is the rowid
    elif list(fields) == names:
        first = False
    elif pk not in value and [pk, *fields] == names:
        first = True
    else:
        return None
    types = tuple(map(type, value.values()))
    ints = tuple(i for i, t in enumerate((type(key),) * first + types) if t is int)
    return fields, types, type(key), first, ints


@hookimpl
def register_formats(register):
    register(Format(
        name="sqlite",
        unique_keys=True,
        description="SQLite database: a table per record set (sqlitedict and dbm.sqlite3 layouts read as key/value)",
        aliases=("sqlite3", "sqlitedict"),
        extensions=(".sqlite", ".sqlite3", ".db"),
        sniff=_sniff,
        reader=_read,
        writer=_write,
        describe=describe_sqlite,
    ))
