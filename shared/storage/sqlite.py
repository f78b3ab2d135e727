"""Opening the embedded SQLite files (task store, cache) the same way: WAL, busy timeout, autocommit."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal


def open_sqlite(
    path: Path, *, busy_timeout: float, synchronous: Literal["NORMAL", "FULL"], pragmas: tuple[str, ...] = ()
) -> sqlite3.Connection:
    """A connection usable from several threads (callers serialize access with a lock).

    WAL lets other processes read while one writes; ``synchronous`` decides what survives a power loss
    (FULL: every commit; NORMAL: all but the last ones). Raises OSError if the directory cannot be
    created, sqlite3.Error if the file is not a usable database.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        for pragma in pragmas:
            connection.execute(f"PRAGMA {pragma}")
    except BaseException:
        connection.close()
        raise
    return connection
