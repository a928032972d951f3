"""SQLite databases: any table as a source; a real table (or a key/value table) as a sink.

Reading: the one user table (or ``--table``). A table of columns (key, value) is a key/value
store: the ``JSON TEXT`` value column this tool writes is decoded from tagged JSON, and a BLOB
value column (sqlitedict's layout, Python 3.13's dbm.sqlite3) goes through the value codecs, so
pickled values are unpickled safely. Any other table gives one record per row: the primary key
(or the rowid) is the record key and the row is a dict of every column.

Writing, ``--layout auto`` makes a real table when every record's value is a dict of scalars
(str keys): one column per field, added as new fields appear, declared INTEGER, REAL, TEXT,
BLOB, BOOLEAN or (for nested values) JSON TEXT; the record key goes in the primary-key column
``--pk`` (default ``key``). Otherwise (or ``--layout kv``) a key/value table whose values are
tagged JSON text. A value that does not fit its column's type is an error, never a silent
conversion; fields added to hold the record key are reported.
"""

from __future__ import annotations

import os
from itertools import chain, islice
from pathlib import Path

from converter import Format, hookimpl
from converter.errors import ConverterError, FormatError, UnsupportedValueError
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
    raise FormatError(f"{path}: several tables {list(tables)}; pick one with --table")


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
        keys = table == "Dict"
        yield from decode_records(records, get_registry(), options, f"{path} table {table}", keys=keys)
        return
    yield from _read_rows(path, table, cols)


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


def _read_rows(path, table, cols):
    from converter.jsontags import loads

    with ro_connection(path) as con:
        info = list(_query(con, path, table, f"PRAGMA table_info({quote_ident(table)})"))
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
    return lambda v: v


# -- writing ------------------------------------------------------------------------------------

def _is_scalar(v):
    return v is None or type(v) in (bool, int, float, str, bytes)


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
    return JSON_TYPE


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
        return value
    raise ValueError(f"{t.__name__} value in a column declared {declared or 'without a type'}")


def _write(path, records, options):
    import sqlite3
    records = iter(records)
    sample = list(islice(records, SAMPLE))
    layout = options.layout
    if layout not in ("auto", "table", "kv"):
        raise UnsupportedValueError(f"--layout must be auto, table or kv, not {layout!r}")
    if layout == "auto":
        layout = "table" if sample and all(_table_like(v) for _, v in sample) else "kv"
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
            _write_table(con, table, chain(sample, records), options, path)
        else:
            _write_kv(con, table, chain(sample, records), path)
        con.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise ConverterError(f"{path}: SQLite refused the data: {exc}") from None
    finally:
        con.close()
    options.note(f"{path}: table {table!r}, {layout} layout")


def _key_type(key):
    if type(key) is bool or not _is_scalar(key) or key is None:
        return None
    return _column_type(key)


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
            try:
                text = dumps(value)
            except UnsupportedValueError as exc:  # a cycle, shared references that expand...
                raise UnsupportedValueError(f"{path}: record {key!r}: {exc}") from None
            yield key, text

    con.executemany(sql, rows())


def _write_table(con, table, records, options, path):
    pk = options.pk
    columns: dict[str, str] = {}
    qt = quote_ident(table)
    added_key = 0
    present = 0  # fields written, to count the ones that will read back as NULL
    rows_written = 0
    created = False
    batch: list = []  # rows as lists in the order of columns (flushed before a column is added)
    # The fast path: a record with the same fields, in the same order and of the same types, as
    # one that took the general path and filled every column directly (no JSON column) needs
    # only its ints range-checked. shape: (fields, value types, key type, key prepended, int
    # positions in the row), or None.
    shape = None

    def flush():
        nonlocal batch
        if batch:
            names = list(columns)
            sql = f"INSERT OR REPLACE INTO {qt} ({', '.join(map(quote_ident, names))}) VALUES ({', '.join('?' * len(names))})"
            con.executemany(sql, batch)
            batch = []

    for key, value in records:
        if shape is not None and type(value) is dict and type(key) is shape[2] and tuple(value) == shape[0] \
                and tuple(map(type, value.values())) == shape[1] and _STR_ONLY.issuperset(map(type, value)):
            if shape[3]:
                row = [key, *value.values()]
            else:
                row = list(value.values())
                if row[0] == key:
                    row[0] = key  # the key itself, as the general path writes it (0.0 for -0.0)
                else:
                    row = None  # the general path says why
            if row is not None:
                for i in shape[4]:
                    if not INT64[0] <= row[i] <= INT64[1]:
                        row = None  # nor is this one for the fast path
                        break
            if row is not None:
                batch.append(row)
                present += len(row)
                added_key += shape[3]
                rows_written += 1
                if len(batch) >= 1000:
                    flush()
                continue
        if type(value) is not dict or not all(isinstance(k, str) for k in value):
            raise UnsupportedValueError(
                f"{path}: record {key!r} is a {type(value).__name__}, not a dict with string keys, so it cannot "
                f"be a row of table {table!r}; use --layout kv"
            )
        ktype = _key_type(key)
        if ktype in (None, JSON_TYPE):
            raise UnsupportedValueError(f"{path}: key {key!r} ({type(key).__name__}) cannot be a SQLite primary key; use --layout kv")
        if not created:
            con.execute(f"CREATE TABLE {qt} ({quote_ident(pk)} {ktype} PRIMARY KEY NOT NULL)")
            columns[pk] = ktype
            created = True
        if pk in value:
            if value[pk] != key or type(value[pk]) is not type(key):
                raise UnsupportedValueError(
                    f"{path}: record {key!r} has field {pk!r} = {value[pk]!r}, not its key; "
                    f"choose another key column with --pk NAME, or use --layout kv"
                )
        else:
            added_key += 1
        row = {pk: key}
        for field, v in value.items():
            if field == pk:
                continue
            if field not in columns:
                if v is None:
                    continue  # typed when a value first appears; a missing column reads back as absent
                flush()
                columns[field] = _column_type(v)
                con.execute(f"ALTER TABLE {qt} ADD COLUMN {quote_ident(field)} {columns[field]}")
            try:
                row[field] = _fits(columns[field], v)
            except UnsupportedValueError as exc:  # from a JSON TEXT field: a cycle, shared references...
                raise UnsupportedValueError(f"{path}: record {key!r} field {field!r}: {exc}") from None
            except ValueError as exc:
                raise UnsupportedValueError(
                    f"{path}: record {key!r} field {field!r}: {exc}; use --layout kv to keep every value exactly"
                ) from None
        batch.append([row.get(n) for n in columns])
        present += len(row)
        rows_written += 1
        shape = _shape(key, value, row, columns, pk)
        if len(batch) >= 1000:
            flush()
    flush()
    if not created:
        con.execute(f"CREATE TABLE {qt} ({quote_ident(pk)} TEXT PRIMARY KEY NOT NULL)")
    missing = rows_written * len(columns) - present
    if missing:
        options.note(
            f"{missing} field(s) absent from some records (or always None) read back as None, since every row "
            f"has every column (use --layout kv to keep records unchanged)"
        )
    if added_key:
        options.note(
            f"added column {pk!r} holding the record key to {added_key} record(s) that had no such field "
            f"(they read back with it; use --layout kv to keep records unchanged)"
        )


_STR_ONLY = frozenset((str,))
_DIRECT = frozenset(("INTEGER", "REAL", "TEXT", "BLOB", "BOOLEAN"))  # columns that store values as they are


def _shape(key, value, row, columns, pk):
    """The fast-path shape of a record that the general path just wrote (see _write_table), or None."""
    names = list(columns)
    fields = tuple(value)
    if len(row) != len(names) or not all(columns[n] in _DIRECT for n in names):
        return None
    if list(fields) == names:
        prepend = False
    elif pk not in value and [pk, *fields] == names:
        prepend = True
    else:
        return None
    types = tuple(map(type, value.values()))
    ints = tuple(i for i, t in enumerate((type(key),) * prepend + types) if t is int)
    return fields, types, type(key), prepend, ints


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
