"""The embedded cache: a SQLite file of (key, value, expires_at)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shared.storage._validation import check_ttl
from shared.storage.sqlite import open_sqlite

if TYPE_CHECKING:
    from shared.clock import Clock

_DDL = (
    "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS cache_expires_at_idx ON cache (expires_at)",
)


class LocalCache:
    """A cache in one SQLite file (WAL mode), shared by threads behind a lock and by processes.

    An entry set with ``ttl_seconds=n`` at time t (``clock.now()``) is visible while now < t + n.
    Expired entries are invisible at once and deleted lazily: on a get that finds one, and on every set.
    """

    def __init__(self, path: Path, clock: Clock, *, busy_timeout: float = 30.0) -> None:
        """Open (creating the file and its directory if missing).

        Raises OSError if the directory cannot be created, sqlite3.Error if the file is not a usable
        database.
        """
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        # NORMAL: a cache may lose its last writes on power loss (not on a process crash).
        connection = open_sqlite(path, busy_timeout=busy_timeout, synchronous="NORMAL")
        try:
            for statement in _DDL:
                connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    @property
    def path(self) -> Path:
        return self._path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._connection is None:
                raise sqlite3.ProgrammingError("The cache is closed.")
            yield self._connection

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        now = self._now()
        with self._connect() as connection:
            row = connection.execute("SELECT value, expires_at FROM cache WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            if row[1] <= now:
                connection.execute("DELETE FROM cache WHERE key = ? AND expires_at <= ?", (key, now))
                return None
            return bytes(row[0])

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store ``value`` for ``ttl_seconds``. Raises ValueError if ttl_seconds is not an int >= 1."""
        check_ttl(ttl_seconds)
        now = self._now()
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute("DELETE FROM cache WHERE expires_at <= ?", (now,))
                connection.execute(
                    "INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                    "expires_at = excluded.expires_at",
                    (key, bytes(value), now + ttl_seconds),
                )
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        with self._connect() as connection:
            connection.execute("DELETE FROM cache WHERE key = ?", (key,))

    def ping(self) -> None:
        """Raise sqlite3.Error if the file cannot be read (ProgrammingError once closed)."""
        with self._connect() as connection:
            connection.execute("SELECT 1 FROM cache LIMIT 1").fetchall()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
