"""The dbm family: dbm.dumb, dbm.sqlite3, dbm.gnu, dbm.ndbm, and shelve on top of any of them.

All are bytes -> bytes stores; the core turns the bytes into values with codecs. Readers are
our own (no C module needed): dbm.dumb and dbm.sqlite3 here, gdbm in ``gdbm.py``, Berkeley DB
(Debian's ndbm, Python 2's dbhash) in ``bdb.py``. Writing dbm.gnu and dbm.ndbm needs the
interpreter's C module.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

from converter import Format, hookimpl
from converter.errors import ConverterError, FormatError, OptionError

SQLITE_MAGIC = b"SQLite format 3\x00"


# -- dbm.dumb ---------------------------------------------------------------------------------

def _dumb_base(path: Path) -> Path:
    if path.suffix in (".dat", ".dir", ".bak"):
        return path.with_suffix("")
    return path


def _dumb_files(path: Path) -> list[Path]:
    base = _dumb_base(path)
    return [Path(f"{base}.dat"), Path(f"{base}.dir")] + ([Path(f"{base}.bak")] if Path(f"{base}.bak").exists() else [])


def _sniff_dumb(head, path):
    base = _dumb_base(Path(path))
    dat, dirf = Path(f"{base}.dat"), Path(f"{base}.dir")
    if not (dat.is_file() and dirf.is_file()):
        return None
    with open(dirf, "rb") as f:
        start = f.read(2)
    if start == b"" or start[:1] in (b"'", b'"') or start in (b"b'", b'b"'):
        return f"dbm.dumb: {dat.name} + {dirf.name} (index of quoted keys)"
    return None


# the usual line, a quoted key without escapes: no need for the (slow) literal parser; offsets
# of more digits than any file offset has go to literal_eval, which refuses them
_PLAIN_DIR_LINE = re.compile(r"'([^'\\]*)', \((\d{1,19}), (\d{1,19})\)\Z")


def _parse_dir_line(line: str, dirfile: Path, lineno: int):
    import ast
    m = _PLAIN_DIR_LINE.match(line)
    if m:
        return m.group(1).encode("latin-1"), int(m.group(2)), int(m.group(3))
    try:
        with warnings.catch_warnings():  # a damaged line's invalid escapes: the error says enough
            warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
            key, (pos, size) = ast.literal_eval(line)  # literal_eval only: a .dir line is never run
    except Exception:
        raise FormatError(f"{dirfile}: line {lineno} is not a dbm.dumb index entry: {line[:60]!r}") from None
    if isinstance(key, str):
        key = key.encode("latin-1")  # both Python 2 and 3 write the key's bytes as Latin-1 text
    if not isinstance(key, bytes) or type(pos) is not int or type(size) is not int or pos < 0 or size < 0:
        raise FormatError(f"{dirfile}: line {lineno} has a bad key or position: {line[:60]!r}")
    return key, pos, size


def _read_dumb_index(base: Path) -> dict[bytes, tuple[int, int]]:
    dirf = Path(f"{base}.dir")
    index: dict[bytes, tuple[int, int]] = {}
    with open(dirf, "r", encoding="latin-1", newline="") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if not line.endswith("\n"):
                raise FormatError(f"{dirf}: line {lineno} is cut short (no newline): the index is truncated")
            key, pos, size = _parse_dir_line(line.rstrip("\r\n"), dirf, lineno)
            index[key] = (pos, size)  # a later line overrides an earlier one, as in dbm.dumb
    return index


def _read_dumb(path, options):
    base = _dumb_base(Path(path))
    dat, dirf = Path(f"{base}.dat"), Path(f"{base}.dir")
    if not dat.is_file() or not dirf.is_file():
        raise FormatError(f"{base}: dbm.dumb needs both {dat.name} and {dirf.name}")
    index = _read_dumb_index(base)
    dat_size = dat.stat().st_size
    with open(dat, "rb") as f:
        for key, (pos, size) in index.items():
            if pos + size > dat_size:
                raise FormatError(f"{dat}: record {key!r} lies at bytes {pos}..{pos + size}, past the end ({dat_size})")
            f.seek(pos)
            yield key, f.read(size)


def _describe_dumb(path, options):
    base = _dumb_base(Path(path))
    keys = sum(1 for _ in _read_dumb_index(base))
    return {"files": ", ".join(p.name for p in _dumb_files(base) if p.exists()), "records": keys,
            "python": "2 (dumbdbm)" if _looks_py2_dir(base) else "3 (dbm.dumb) or 2"}


def _looks_py2_dir(base):
    # Python 3 writes Latin-1 text of the key; Python 2 wrote repr() of a byte string, which
    # escapes every non-ASCII byte: raw bytes >= 0x80 in the index mean Python 3
    data = Path(f"{base}.dir").read_bytes()
    return bool(data) and max(data) < 0x80 and b"\\x" in data


def _write_dumb(path, records, options):
    import dbm.dumb

    base = _dumb_base(Path(path))
    db = dbm.dumb.open(str(base), "n")
    try:
        for key, value in records:
            db[key] = value
    finally:
        db.close()


# -- dbm.sqlite3 (Python 3.13's schema, read and written with sqlite3 on every Python) -------

@contextlib.contextmanager
def ro_connection(path: Path):
    """A read-only connection that cannot create -wal/-shm files beside the input.

    A database in rollback-journal mode (the default) is read with SQLite's locks, inside one
    read transaction held for the whole conversion: every query sees the same committed
    state, and a concurrent writer cannot commit until we are done (a read-only reader creates
    no file). A writer that is committing, or one that crashed and left a hot journal to roll
    back (which a read-only reader cannot do), is a FormatError.

    A WAL-mode database would need -wal/-shm files to be read with locks, so it is read with
    ``immutable=1``; one with a non-empty -wal file is first copied (with its WAL) to a
    temporary directory and read there. (The core also refuses any input whose size or
    modification time changed while it was read.)
    """
    import sqlite3
    wal = Path(f"{path}-wal")
    journal = Path(f"{path}-journal")
    head = _header(path)
    tmp = None
    try:
        if wal.exists() and wal.stat().st_size:
            # the WAL's frames may hold pages past the main file's end: its length proves nothing
            tmp = Path(tempfile.mkdtemp(prefix="convert-ro-"))
            shutil.copy2(path, tmp / "db")
            shutil.copy2(wal, tmp / "db-wal")
            con = sqlite3.connect(f"file:{_quote_uri(tmp / 'db')}?mode=ro", uri=True)
        elif not _wal_mode(head) or (journal.exists() and journal.stat().st_size):
            con = sqlite3.connect(f"file:{_quote_uri(path)}?mode=ro", uri=True, timeout=2,
                                  isolation_level=None)
            try:
                con.execute("BEGIN")
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes the shared lock
                # as SQLite counts them now, under the lock, where no writer can change the file (the
                # header is not read again here: closing another descriptor of the file would drop
                # SQLite's POSIX lock)
                counted = (con.execute("PRAGMA page_count").fetchone()[0],
                           con.execute("PRAGMA page_size").fetchone()[0])
            except sqlite3.DatabaseError as exc:
                con.close()
                if not journal.exists() and "locked" not in str(exc) and "busy" not in str(exc):
                    refuse_truncated_sqlite(path, _header(path))  # "malformed" is, more exactly, this
                    raise FormatError(f"{path}: not a readable SQLite database: {exc}") from None
                raise FormatError(
                    f"{path}: another program is writing it"
                    f"{f', or crashed while writing ({journal.name} exists)' if journal.exists() else ''}, "
                    f"and SQLite cannot give a consistent state ({exc}); let the writer finish, or open the "
                    f"database once with sqlite3 to recover it, then convert again") from None
            try:
                refuse_truncated_sqlite(path, head, counted)
            except FormatError:
                con.close()
                raise
        else:
            refuse_truncated_sqlite(path, head)  # WAL mode without a WAL: the main file is all there is
            con = sqlite3.connect(f"file:{_quote_uri(path)}?mode=ro&immutable=1", uri=True)
        try:
            yield con
        finally:
            con.close()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _header(path: Path) -> bytes:
    """The first 100 bytes of a file, the SQLite database header (b"" if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(100)
    except OSError:
        return b""


def _wal_mode(head: bytes) -> bool:
    """The database header says WAL (file format read/write versions 2 at offsets 18 and 19)."""
    return head[18:20] == b"\x02\x02"


def refuse_truncated_sqlite(path: Path, head: bytes, counted: tuple[int, int] | None = None) -> None:
    """A FormatError if the SQLite file ``path`` is certainly shorter than its header ``head`` says.

    SQLite reads the pages past the end of a short file as zeros, so a file cut inside its last
    page reads without an error, as made-up rows (cut shorter, it is only "malformed"). The
    database size in pages at offset 28 counts only when it is non-zero and the change counter
    at offset 24 equals the version-valid-for number at offset 92 (older writers leave it stale:
    such a file is refused by nothing here, whatever its length). ``counted``: (pages, page size)
    as SQLite counted them under its shared lock, where no writer can change the file, while
    ``head`` may have been read before it was taken. A database with a WAL is not checked: the
    WAL's frames may hold pages past the main file's end.
    """
    if not head.startswith(SQLITE_MAGIC):
        return  # SQLite says what it is not
    try:
        size = os.stat(path).st_size
    except OSError:
        return  # SQLite says why it cannot open it
    if len(head) < 100:
        raise FormatError(f"{path}: truncated SQLite database: the file has {size:,} bytes, "
                          f"less than its 100-byte header")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    if not pages or head[24:28] != head[92:96] or not 512 <= page_size <= 65536 or page_size & (page_size - 1):
        return
    if counted:
        pages, page_size = counted
    if size < pages * page_size:
        raise FormatError(
            f"{path}: truncated SQLite database: the header says {pages:,} page{'s' if pages != 1 else ''} of "
            f"{page_size:,} bytes ({pages * page_size:,} bytes) but the file has {size:,} bytes")


def _quote_uri(path: Path) -> str:
    from urllib.parse import quote

    return quote(os.fsencode(Path(path).absolute()))  # bytes: a name that is not UTF-8 works too


def sqlite_tables(path: Path) -> dict[str, list[tuple[str, str]]]:
    """{table: [(column, declared type), ...]} for the user tables of a SQLite file."""
    import sqlite3
    try:
        with ro_connection(path) as con:
            names = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
            return {n: [(c[1], c[2]) for c in con.execute(f"PRAGMA table_info({quote_ident(n)})")] for n in names}
    except sqlite3.DatabaseError as exc:
        raise FormatError(f"{path}: not a readable SQLite database: {exc}") from None
    except UnicodeDecodeError as exc:  # sqlite3 decodes TEXT as UTF-8 and raises this, not a DatabaseError
        raise FormatError(f"{path}: not a readable SQLite database: its schema holds text that is not UTF-8 "
                          f"({exc.reason} at byte {exc.start})") from None


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def is_dbm_sqlite3(tables) -> bool:
    cols = tables.get("Dict")
    return cols is not None and [c[0] for c in cols] == ["key", "value"]


def _sniff_sqlite3(head, path):
    if not head.startswith(SQLITE_MAGIC):
        return None
    try:
        return "dbm.sqlite3: SQLite with table Dict(key, value)" if is_dbm_sqlite3(sqlite_tables(path)) else None
    except ConverterError:
        return None


def read_dict_table(path, table="Dict"):
    import sqlite3
    with ro_connection(path) as con:
        try:
            for key, value in con.execute(
                    f"SELECT CAST(key AS BLOB), CAST(value AS BLOB) FROM {quote_ident(table)} ORDER BY rowid"):
                if key is None or value is None:  # the schema says NOT NULL; a damaged or foreign file may not
                    raise FormatError(f"{path}: table {table} holds a NULL {'key' if key is None else 'value'}"
                                      f"{'' if key is None else f' (record {key!r})'}, which no dbm store can hold")
                yield key, value
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"{path}: cannot read table {table}: {exc}") from None


def describe_sqlite(path, options):
    details = {}
    with ro_connection(path) as con:
        for table in sqlite_tables(path):
            n = con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0]
            details[f"table {table}"] = f"{n} row(s)"
    return details


def _read_sqlite3(path, options):
    if not is_dbm_sqlite3(sqlite_tables(path)):
        raise FormatError(f"{path}: not a dbm.sqlite3 database (no table Dict(key, value))")
    yield from read_dict_table(path)


def _write_sqlite3(path, records, options):
    import sqlite3
    con = sqlite3.connect(str(path), isolation_level=None)
    try:
        # the output is a temporary file until it is renamed into place, so bulk settings are safe
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.execute("CREATE TABLE Dict (key BLOB UNIQUE NOT NULL, value BLOB NOT NULL)")
        con.execute("BEGIN")
        con.executemany("INSERT OR REPLACE INTO Dict (key, value) VALUES (?, ?)", records)
        con.execute("COMMIT")
        con.execute("PRAGMA journal_mode = WAL")  # what Python 3.13's dbm.sqlite3 uses
    finally:
        con.close()


# -- dbm.gnu and dbm.ndbm ----------------------------------------------------------------------

def _stdlib(module: str, path, what: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConverterError(f"{path}: {what} needs Python's {module} module, which this interpreter "
                             f"({_python()}) lacks; {_how_to_get(module)}, or choose another output format") from None


def _how_to_get(module: str) -> str:
    """Advice that can help *this* interpreter: a system package only helps the system Python."""
    import sys

    package = {"dbm.gnu": "python3-gdbm", "dbm.ndbm": "python3-gdbm"}.get(module, "")
    if sys.base_prefix == "/usr" and package:  # Debian's own Python (in a venv or not)
        return f"install it (Debian: apt-get install {package})"
    lib = "libgdbm-dev" if module == "dbm.gnu" else "libgdbm-compat-dev"
    return (f"this Python was built without it: rebuild it with {lib} installed (pyenv: apt-get install {lib}, "
            f"then pyenv install again), or run converter-toolkit under a Python that has it")


def _python():
    import sys

    return f"Python {sys.version.split()[0]} at {sys.executable}"


def _write_stdlib(module):
    def write(path, records, options):
        mod = _stdlib(module, path, f"writing {module}")
        name = path
        if module == "dbm.ndbm":  # the library adds its own suffixes: NAME.pag + NAME.dir, or NAME.db
            name = _ndbm_files(path)[0].with_suffix("")
        db = mod.open(str(name), "n")
        try:
            for key, value in records:
                db[key] = value
        finally:
            db.close()
        if module == "dbm.ndbm" and not Path(f"{name}.pag").exists():
            made = sorted(p.name for p in Path(name).parent.iterdir())
            options.note(f"{path}: this Python's dbm.ndbm is Berkeley DB's, which writes {', '.join(made)}; "
                         f"read it back by that name or by {Path(path).name}")

    return write


def _read_gnu(path, options):
    from converter.plugins.gdbm_file import GdbmFile

    with GdbmFile(path) as db:
        yield from db.items()


def _gdbm_describe(path, options):
    from converter.plugins.gdbm_file import describe

    return describe(path, options)


def _sniff_gnu(head, path):
    from converter.plugins.gdbm import sniff

    return sniff(head)


def _ndbm_files(path: Path) -> list[Path]:
    path = Path(path)
    for suffix in (".db", ".pag", ".dir"):
        if path.suffix == suffix:
            path = path.with_suffix("")
    pag, dirf, db = Path(f"{path}.pag"), Path(f"{path}.dir"), Path(f"{path}.db")
    if pag.exists() or dirf.exists():
        return [dirf, pag]
    return [db]


def _ndbm_source(path: Path):
    """('bdb', NAME.db) or ('gdbm', NAME.pag) for an ndbm store given by any of its names."""
    from converter.plugins.bdb import sniff as bdb_sniff
    from converter.plugins.gdbm import ndbm_pag_path

    pag = ndbm_pag_path(str(path))
    if pag:
        return "gdbm", Path(pag)
    for candidate in _ndbm_files(path):
        if candidate.suffix == ".db" and candidate.is_file():
            with open(candidate, "rb") as f:
                if bdb_sniff(f.read(512)):
                    return "bdb", candidate
    return None, None


def _sniff_ndbm(head, path):
    kind, file = _ndbm_source(Path(path))
    if kind == "gdbm":
        return f"dbm.ndbm (gdbm_compat): {file.with_suffix('.dir').name} + {file.name}"
    if kind == "bdb" and Path(path).suffix != ".db":
        # a bare NAME whose NAME.db is Berkeley DB: what Debian's dbm.ndbm.open(NAME) made
        return f"dbm.ndbm (Berkeley DB): {file.name}"
    return None


def _read_ndbm(path, options):
    kind, file = _ndbm_source(Path(path))
    if kind == "gdbm":
        from converter.plugins.gdbm_file import GdbmFile

        with GdbmFile(file) as db:
            yield from db.items()
    elif kind == "bdb":
        from converter.plugins.bdb_file import BerkeleyDB

        with BerkeleyDB(file, database=options.database) as db:
            yield from db.items()
    else:
        raise FormatError(f"{path}: no ndbm store here (looked for NAME.dir + NAME.pag and a Berkeley DB NAME.db)")


# -- shelve ------------------------------------------------------------------------------------

_FLAVOURS = ("dbm.dumb", "dbm.sqlite3", "dbm.gnu", "dbm.ndbm", "berkeleydb")


def default_shelve_flavour() -> str:
    """What shelve.open would create on this interpreter (dbm's own order of preference)."""
    import dbm

    for name in getattr(dbm, "_names", ["dbm.gnu", "dbm.ndbm", "dbm.dumb"]):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return name
    return "dbm.dumb"


def _shelve_flavour_for_reading(path, options):
    from converter.detect import sniff

    registry = _registry_of(options)
    for fmt, _reason in sniff(Path(path), registry):
        if fmt.name in _FLAVOURS:
            return fmt
    try:
        with open(path, "rb") as f:
            sqlite = f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        sqlite = False
    if sqlite:  # the dbm.sqlite3 sniff says no to a damaged database: say what is wrong with it
        tables = sqlite_tables(path)
        raise FormatError(f"{path}: not a shelve: a SQLite database without the table Dict of dbm.sqlite3 "
                          f"(tables: {', '.join(tables) or 'none'})")
    raise FormatError(f"{path}: not a shelve: no dbm store found here (checked {', '.join(_FLAVOURS)})")


def _registry_of(options):
    from converter.registry import get_registry

    return options.extra.get("registry") or get_registry()


def _read_shelve(path, options):
    yield from _shelve_flavour_for_reading(path, options).reader(path, options)


def _shelve_flavour_for_writing(options):
    from converter.errors import UnknownFormatError

    name = options.dbm or default_shelve_flavour()
    registry = _registry_of(options)
    here = [f.name for f in map(registry.format, _FLAVOURS) if f.name != "berkeleydb" and f.missing_for_writing() is None]
    try:
        fmt = registry.format(name)
    except UnknownFormatError:
        fmt = None
    if fmt is None or fmt.name not in _FLAVOURS or fmt.writer is None or fmt.missing_for_writing() is not None:
        from converter.registry import _did_you_mean

        why = f" ({fmt.missing_for_writing()})" if fmt is not None and fmt.missing_for_writing() else ""
        close = _did_you_mean(name, here) if fmt is None or fmt.name not in _FLAVOURS else ""
        raise OptionError(f"--dbm {name}{why}{close}: a shelve can be written here as one of {here}")
    return fmt


def _write_shelve(path, records, options):
    fmt = _shelve_flavour_for_writing(options)
    options.note(f"{path}: shelve written as {fmt.name}")
    fmt.writer(path, records, options)


def _shelve_files(path):
    # the files depend on the flavour; dbm.dumb's pair covers the default on Pythons < 3.13
    from converter.options import Options

    try:
        return _shelve_flavour_for_writing(Options()).parts(Path(path))
    except ConverterError:
        return [Path(path)]


@hookimpl
def register_formats(register):
    register(Format(
        name="dbm.dumb",
        unique_keys=True,
        description="dbm.dumb / Python 2 dumbdbm: NAME.dat + NAME.dir",
        aliases=("dumbdbm", "dumb"),
        extensions=(".dat",),
        sniff=_sniff_dumb, reader=_read_dumb, writer=_write_dumb, kv=True,
        files=_dumb_files, priority=10, describe=_describe_dumb,
    ))
    register(Format(
        name="dbm.sqlite3",
        unique_keys=True,
        description="Python 3.13's dbm.sqlite3 (SQLite table Dict), read and written on any Python",
        aliases=("sqlite3-dbm",),
        sniff=_sniff_sqlite3, reader=_read_sqlite3, writer=_write_sqlite3, kv=True, priority=20,
        describe=describe_sqlite,
    ))
    register(Format(
        name="dbm.gnu",
        unique_keys=True,
        description="GNU dbm (gdbm) file; read without the C module, written with it",
        aliases=("gdbm", "gnu"),
        extensions=(".gdbm", ".gdb"),
        sniff=_sniff_gnu, reader=_read_gnu, writer=_write_stdlib("dbm.gnu"), writer_needs=("_gdbm",), kv=True,
        priority=10,
        describe=lambda path, options: _gdbm_describe(path, options),
    ))
    register(Format(
        name="dbm.ndbm",
        unique_keys=True,
        description="ndbm: NAME.dir + NAME.pag (gdbm_compat) or NAME.db (Berkeley DB, Debian's dbm.ndbm)",
        aliases=("ndbm", "dbm"),
        extensions=(".pag",),
        sniff=_sniff_ndbm, reader=_read_ndbm, writer=_write_stdlib("dbm.ndbm"), writer_needs=("_dbm",), kv=True,
        files=_ndbm_files, priority=15,
    ))
    register(Format(
        name="shelve",
        unique_keys=True,
        description="shelve: any dbm flavour holding pickled values under str keys",
        extensions=(".shelve", ".shelf"),
        reader=_read_shelve, writer=_write_shelve, kv=True, key_codec="utf8", value_codec="pickle",
        files=_shelve_files,
    ))
