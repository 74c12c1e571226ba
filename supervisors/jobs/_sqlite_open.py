"""Opening a job database file: check it is ours before touching it, then migrate it.

A file is looked at read-only first (its header, then, through a read-only connection that
creates no file, its ``application_id``, ``user_version`` and tables). Only a file that is ours
(marked with `APPLICATION_ID`, or made by the first release, which did not mark it), an empty
database or a missing or empty file is opened for writing; anything else raises `StoreError`
with one line naming the path, what is wrong and what to do, and leaves the file, its directory
and its ``-wal``/``-shm`` companions exactly as they were.

A file this process already has a connection open to is not checked again. SQLite's locks are
POSIX advisory locks, which belong to the process: closing *any* descriptor of the file (a plain
read of its header, a connection that takes no locks, as the check's do) drops the locks of
every connection of the process to it, and another process closing its own last connection
would then take the file for unused, checkpoint it and delete its WAL under our feet.
"""

from __future__ import annotations

import collections
import os
import shutil
import sqlite3
import stat
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

from ._errors import StoreError
from ._migrations import LEGACY_TABLES, MIGRATIONS, SCHEMA_VERSION

APPLICATION_ID = 0x54524A42
"""``PRAGMA application_id`` of a job database ("TRJB"), set by every migration."""

MIN_SQLITE = (3, 35, 0)

_MAGIC = b"SQLite format 3\x00"

_open_files: collections.Counter[tuple[int, int]] = collections.Counter()
"""The files (device, inode) this process has connections open to, and how many."""
_open_keys: dict[int, tuple[int, int]] = {}
"""``id()`` of each open connection → its file."""
_open_lock = threading.Lock()
"""Guards the two, and is held from a file's check until its connection is counted."""


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def close(conn: sqlite3.Connection) -> None:
    """Close a connection made by `connect` (then its file may be checked again)."""
    with _open_lock:
        conn.close()
        key = _open_keys.pop(id(conn), None)
        if key is not None:
            _open_files[key] -= 1
            if _open_files[key] <= 0:
                del _open_files[key]
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
"""``PRAGMA journal_size_limit``: the size the WAL file is truncated to after a checkpoint."""

CACHE_KIB = 16 * 1024
"""The page cache of each connection, in KiB (``PRAGMA cache_size=-CACHE_KIB``; SQLite's
default is 2 MiB). Claiming in priority order reads table pages spread over the whole file;
with the default, a store of a few tens of thousands of jobs already reads them again from the
file system on every pass."""


def check_sqlite_version(version: str = sqlite3.sqlite_version) -> None:
    """Raise `StoreError` unless SQLite is recent enough for ``UPDATE ... RETURNING``."""
    have = tuple(int(p) for p in version.split(".")[:3])
    if have < MIN_SQLITE:
        msg = (
            f"SQLite {version} is too old for the job store: it needs "
            f"{'.'.join(map(str, MIN_SQLITE))} or later (UPDATE ... RETURNING); "
            "upgrade Python or the system SQLite library"
        )
        raise StoreError(msg)


def _writable(path: Path) -> bool:
    """Whether this process may write ``path``; a file or directory with no write permission bit
    counts as read-only even for root, who could write it, since its owner meant it so."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK) and bool(mode & 0o222)


def _refuse(path: str, what: str, todo: str) -> StoreError:
    return StoreError(f"job store {path!r} {what}; {todo}")


def _check_place(path: Path) -> bool:
    """Check the file's place on disk; return whether it holds a database to inspect."""
    where = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        parent = path.parent
        if not parent.is_dir():
            raise _refuse(
                where, "cannot be created: its directory does not exist", "create the directory"
            ) from None
        if not _writable(parent):
            raise _refuse(
                where,
                "cannot be created: its directory is not writable",
                "make the directory writable or choose another path",
            ) from None
        return False
    except OSError as exc:
        raise _refuse(where, f"cannot be read ({exc.strerror})", "check the path") from None
    if stat.S_ISDIR(st.st_mode):
        raise _refuse(where, "is a directory", "give the path of a file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(where, "is not a regular file", "give the path of a database file")
    return st.st_size > 0


def _read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(100)
    except OSError as exc:
        raise _refuse(str(path), f"cannot be read ({exc.strerror})", "check its permissions") from None


def _read_marks(path: Path, options: str) -> tuple[int, int, frozenset[str]]:
    uri = f"file:{quote(str(path.absolute()))}?{options}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = frozenset(
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(r[0]).startswith("sqlite_")
        )
    finally:
        conn.close()
    return app_id, version, tables


def _read_copy(path: Path, wal: Path) -> tuple[int, int, frozenset[str]]:
    """Read the marks of a copy of the file and its ``-wal``, leaving the originals untouched
    (a reader of the original would write its ``-shm``)."""
    with tempfile.TemporaryDirectory(prefix="jobs-check-") as tmp:
        copy = Path(tmp) / "copy.db"
        shutil.copyfile(path, copy)
        shutil.copyfile(wal, f"{copy}-wal")
        return _read_marks(copy, "mode=rw")


def _inspect(path: Path) -> tuple[int, int, frozenset[str]]:
    """``application_id``, ``user_version`` and table names, read without writing anything.

    The main file is read with ``immutable=1`` (no locks, no ``-wal`` or ``-shm`` touched or
    created). Only when that shows an empty database beside a ``-wal`` file (say ours, created by
    a host that died before its first checkpoint) is the ``-wal`` read too, from a copy.
    """
    wal = Path(f"{path}-wal")
    try:
        try:
            marks = _read_marks(path, "mode=ro&immutable=1")
        except sqlite3.DatabaseError:
            if not wal.exists():
                raise
            marks = (0, 0, frozenset())  # a page torn by a concurrent checkpoint
        if marks == (0, 0, frozenset()) and wal.exists():
            marks = _read_copy(path, wal)
    except sqlite3.DatabaseError as exc:
        raise _refuse(
            str(path),
            f"is not a usable SQLite database ({exc})",
            "point the job store at its own file",
        ) from None
    except sqlite3.Error as exc:
        raise _refuse(str(path), f"cannot be opened ({exc})", "check its permissions") from None
    return marks


def _check_ours(path: Path, app_id: int, version: int, tables: frozenset[str]) -> None:
    where = str(path)
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise _refuse(
                where,
                f"has job-store schema version {version}, newer than the {SCHEMA_VERSION} this "
                "library understands",
                "upgrade this library to the version that wrote it",
            )
        return
    if app_id == 0 and version == 0 and not tables:
        return  # an empty database: ours to fill
    if app_id == 0 and version == 1 and tables == LEGACY_TABLES:
        return  # made by the first release, which did not set application_id
    names = ", ".join(sorted(tables)) or "none"
    raise _refuse(
        where,
        f"is another application's database (application_id {app_id}, user_version {version}, "
        f"tables: {names})",
        "point the job store at its own file",
    )


def check_file(path: Path) -> None:
    """Raise `StoreError` unless ``path`` is a job database, an empty one or a new file that can
    be written; writes nothing."""
    if not _check_place(path):
        return
    header = _read_header(path)
    if not header.startswith(_MAGIC):
        raise _refuse(
            str(path),
            "is not a SQLite database (its header is not 'SQLite format 3')",
            "point the job store at its own file, or remove this one if it is yours",
        )
    app_id, version, tables = _inspect(path)
    _check_ours(path, app_id, version, tables)
    if not os.access(path, os.R_OK) or not _writable(path):
        raise _refuse(
            str(path), "is read-only", "make it writable by this user, or choose another path"
        )
    if not _writable(path.parent):
        raise _refuse(
            str(path),
            "is in a read-only directory (SQLite needs to create its -wal and -shm files beside "
            "it)",
            "make the directory writable",
        )


def migrate(conn: sqlite3.Connection, where: str) -> None:
    """Bring the schema to `SCHEMA_VERSION` in one ``BEGIN IMMEDIATE`` transaction.

    Runs each step after the database's ``user_version`` in order, then sets ``user_version``
    and ``application_id``. Checks again under the write lock, since another process may have
    migrated (or another application written) the file since `check_file` looked. A file
    already at `SCHEMA_VERSION` with our ``application_id`` (committed: a migration under way
    elsewhere is not seen before its commit) is left as it is without taking the lock, so a
    connection that opens while another holds the write lock (a store's reader) does not wait.
    """
    current = (
        int(conn.execute("PRAGMA application_id").fetchone()[0]),
        int(conn.execute("PRAGMA user_version").fetchone()[0]),
    )
    if current == (APPLICATION_ID, SCHEMA_VERSION):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = frozenset(
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(r[0]).startswith("sqlite_")
        )
        _check_ours(Path(where), app_id, version, tables)
        for step in MIGRATIONS[version:]:
            step.apply(conn)
        if version != SCHEMA_VERSION or app_id != APPLICATION_ID:
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: str | Path, *, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Check, open and migrate the job database at ``path`` (``":memory:"`` for a private one).

    Returns a connection in autocommit mode (``isolation_level=None``), WAL journal, the given
    ``PRAGMA synchronous``. Raises `StoreError` (and changes nothing) if the file is not ours,
    cannot be written, or was written by a newer schema; ``ValueError`` for a bad
    ``synchronous``.
    """
    check_sqlite_version()
    sync = synchronous.upper()
    if sync not in _SYNCHRONOUS:
        msg = f"'synchronous' must be OFF, NORMAL, FULL or EXTRA (got {synchronous!r})"
        raise ValueError(msg)
    where = str(path)
    memory = where == ":memory:"
    with _open_lock:
        if not memory and _identity(where) not in _open_files:  # see the module's doc
            check_file(Path(where))
        try:
            conn = sqlite3.connect(where, isolation_level=None, check_same_thread=False, timeout=30.0)
        except sqlite3.Error as exc:
            raise _refuse(where, f"cannot be opened ({exc})", "check the path and permissions") from None
        key = None if memory else _identity(where)
        if key is not None:
            _open_files[key] += 1
            _open_keys[id(conn)] = key
    try:
        # Space freed by pruning can be given back to the file system in small steps
        # (`SQLiteDB.reclaim`). Takes effect only on a new, empty file, so it must come before
        # the switch to WAL writes the header; an existing file keeps its setting (and is not
        # asked: the pragma waits for the write lock).
        if memory or int(conn.execute("PRAGMA page_count").fetchone()[0]) == 0:
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        if not memory:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise _refuse(
                    where,
                    f"cannot be switched to WAL mode (got {mode!r})",
                    "put it on a local file system",
                )
        conn.execute(f"PRAGMA synchronous={sync}")
        # After a checkpoint, the WAL is truncated to this size instead of staying at its peak.
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        migrate(conn, where)
        # A statement that changes many rows inside a transaction (a claim, a batch of
        # outcomes) copies each page it touches to a statement journal; past 64 KiB SQLite
        # moves that journal to a new temporary file (created, written and deleted per
        # statement). In memory, no file is created. Set after the migrations, whose index
        # builds may sort more rows than memory should hold (a sort spills to files only
        # while temporary files are allowed).
        conn.execute("PRAGMA temp_store=MEMORY")
    except sqlite3.Error as exc:
        close(conn)
        raise _refuse(where, f"cannot be set up ({exc})", "check the file and its directory") from None
    except BaseException:
        close(conn)
        raise
    return conn
