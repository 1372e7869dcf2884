"""The SQLite mirror of crawl progress (seed §5.1 schema plus the counters, status and source).

Written after every applied page, once the page's messages are acknowledged, so it never claims
more than the broker holds. It is read when the table has no entry for a task (a new or wiped
broker) or holds less than the mirror (a changelog recovered short).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from jobstream.progress.fields import FIELDS, ProgressField
from jobstream.progress.sqlite import open_local
from jobstream.records import Progress

logger = logging.getLogger(__name__)

# Seed §5.1's table, its four columns exactly as the seed declares them.
_SEED_COLUMNS: Final = {
    "task_id": "TEXT PRIMARY KEY",
    "current_offset": "INTEGER",
    "total": "INTEGER",
    "last_update": "TIMESTAMP",
}
_SCHEMA: Final = "CREATE TABLE IF NOT EXISTS crawl_progress ({})".format(
    ", ".join(f"{column} {declaration}" for column, declaration in _SEED_COLUMNS.items())
)


def _column(field: ProgressField) -> str:
    """The SQL declaration of a column beyond the seed's, from the field's type and default.

    NOT NULL with the field's default, so that the rows of a database written before the
    column existed read as Progress's default; nullable when None is a value of the field.
    """
    kind, nullable = field.type, False
    if isinstance(kind, mi.UnionType):
        others = [t for t in kind.types if not isinstance(t, mi.NoneType)]
        if len(others) == 1:
            kind, nullable = others[0], True
    sql = _sql_type(kind)
    default = field.default
    if sql is None or not (isinstance(default, int | str) or (nullable and default is None)):
        raise TypeError(
            f"Progress.{field.name}: say how the SQLite mirror keeps {field.annotation} "
            f"with the default {default!r}"
        )
    if default is None:
        return sql
    literal = "'" + default.replace("'", "''") + "'" if isinstance(default, str) else str(default)
    return f"{sql}{'' if nullable else ' NOT NULL'} DEFAULT {literal}"


def _sql_type(kind: mi.Type) -> str | None:
    if isinstance(kind, mi.IntType):
        return "INTEGER"
    if isinstance(kind, mi.StrType):
        return "TEXT"
    if isinstance(kind, mi.LiteralType) and all(isinstance(v, str) for v in kind.values):
        return "TEXT"
    return None


# Columns beyond the seed's, one per Progress field, added to a table of any earlier version.
_EXTRA_COLUMNS: Final = {
    field.name: _column(field) for field in FIELDS if field.name not in _SEED_COLUMNS
}
_COLUMNS: Final = Progress.__struct_fields__


class ProgressMirror:
    """One SQLite file, opened on first use, written from the event loop thread only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_local(self.path, _SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(crawl_progress)")}
            for column, declaration in _EXTRA_COLUMNS.items():
                if column not in present:
                    db.execute(f"ALTER TABLE crawl_progress ADD COLUMN {column} {declaration}")
            self._db = db
        return self._db

    def load(self, task_id: str) -> Progress | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {', '.join(_COLUMNS)} FROM crawl_progress WHERE task_id = ?", (task_id,)
            )
            .fetchone()
        )
        if row is None:
            return None
        values: dict[str, Any] = {
            column: value for column, value in zip(_COLUMNS, row, strict=True) if value is not None
        }
        try:
            return msgspec.convert(values, Progress)
        except msgspec.ValidationError as exc:
            logger.warning("task_id=%s the SQLite mirror row is unusable: %s", task_id, exc)
            return None

    def save(self, progress: Progress) -> None:
        values = [getattr(progress, column) for column in _COLUMNS]
        self._connection().execute(
            f"INSERT OR REPLACE INTO crawl_progress ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
            values,
        )

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
