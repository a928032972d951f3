"""CSV for converter-toolkit, an example plugin distribution.

A record becomes a row: the first column, ``key``, holds the record key, and a value that is a
dict of str keys gives one column per field (the header is the union of the fields, in the
order they first appear, so this writer holds all records in memory); any other value goes in a
single ``value`` column. Every cell is the record's tagged JSON text (``converter.jsontags``),
so ``21`` and ``"21"`` stay apart and the file reads back exactly; a field a row lacks is an
empty cell, which reads back as a missing field. Columns are read by position, so a field
named ``key`` (as in ``examples/people.pkl``) is the second ``key`` column.
"""

import csv
import io

from converter import Format, hookimpl
from converter.errors import FormatError
from converter.fileio import open_input, open_output
from converter.jsontags import dumps, loads


def _sniff(head, path):
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    return "CSV with a key column" if first == b"key" or first.startswith(b"key,") else None


def read_csv(path, options):
    with open_input(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        rows = csv.reader(text)
        try:
            header = next(rows, None)
            if header is None:
                return
            if not header or header[0] != "key":
                raise FormatError(f"{path}: the first column must be 'key', not {header[:1]}")
            fields = header[1:]
            for lineno, row in enumerate(rows, 2):
                if len(row) != len(header):
                    raise FormatError(f"{path} line {lineno}: {len(row)} cells, the header has {len(header)}")
                where = f"{path} line {lineno}"  # loads(name=...) says where a cell is not JSON
                key = loads(row[0], name=f"{where}, column key")
                if fields == ["value"]:
                    yield key, loads(row[1], name=f"{where}, column value")
                else:
                    yield key, {name: loads(cell, name=f"{where}, column {name}")
                                for name, cell in zip(fields, row[1:]) if cell != ""}
        except (csv.Error, UnicodeDecodeError) as exc:
            raise FormatError(f"{path}: not CSV: {exc}") from None


def write_csv(path, records, options):
    records = list(records)
    dicts = bool(records) and all(type(v) is dict and v and all(type(k) is str for k in v) for _, v in records)
    if dicts:
        fields = list(dict.fromkeys(name for _, v in records for name in v))  # a field "key" too: by position
    else:
        fields = ["value"]
    with open_output(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        w = csv.writer(text)
        w.writerow(["key", *fields])
        for key, value in records:
            if dicts:
                cells = [dumps(value[n]) if n in value else "" for n in fields]
            else:
                cells = [dumps(value)]
            w.writerow([dumps(key), *cells])
        text.flush()
        text.detach()


@hookimpl
def register_formats(register):
    register(Format(name="csv", description="CSV: a key column and a column per field, cells as tagged JSON",
                    extensions=(".csv",), sniff=_sniff, reader=read_csv, writer=write_csv, stream=True))
