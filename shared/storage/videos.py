"""Tenant-owned videos: which tenant a task belongs to, and what the API was asked for it.

One row per task created through the API (``vidluxe enhance`` tasks have none): the owning tenant,
the webhook URL and metadata, the idempotency key (unique per tenant), the upload keys, content type,
size limit and expiry. The task itself (status, stages, outputs) stays in the task store; this store
shares its database and joins the ``tasks`` table to filter by status.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.errors import InvalidInputError, NotFoundError
from shared.storage.sql import ReadPlan, SqlDatabase, dump_json, load_json
from shared.storage.sql_tasks import TASK_COLUMNS, task_from_row
from shared.storage.tasks import TaskRecord, TaskStatus

_DDL = """
CREATE TABLE IF NOT EXISTS {videos} (
    id {identity},
    task_id TEXT NOT NULL UNIQUE REFERENCES {tasks} (task_id),
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    webhook_url TEXT,
    metadata {json} NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT NOT NULL,
    upload_keys {json} NOT NULL,
    content_type TEXT NOT NULL,
    max_bytes BIGINT NOT NULL,
    upload_expires_at {timestamp} NOT NULL,
    created_at {timestamp} NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS videos_tenant_created_idx ON {videos} (tenant_id, created_at, id)
"""

_COLUMNS = (
    "task_id, tenant_id, pipeline, webhook_url, metadata, idempotency_key, request_hash, upload_keys, "
    "content_type, max_bytes, upload_expires_at, created_at"
)
_WIDTH = len(_COLUMNS.split(","))


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


class VideoRecord(BaseModel):
    task_id: str
    tenant_id: str
    pipeline: str
    webhook_url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str  # of the create request, to refuse an idempotency key reused for another request
    upload_keys: list[str]
    content_type: str
    max_bytes: int
    upload_expires_at: datetime
    created_at: datetime


class VideoPage(BaseModel):
    videos: list[VideoRecord]
    next_cursor: str | None = None


class VideoStore:
    """Video records over the (shared) database that holds the task store's ``tasks`` table.

    Build the task store on the database first: the ``videos`` table references ``tasks``.
    """

    def __init__(self, database: SqlDatabase) -> None:
        """Create the table if missing; raises the driver's error if the database cannot be reached."""
        self._db = database
        self._videos = database.table("videos")
        self._tasks = database.table("tasks")
        self._with_task_sql: dict[tuple[str, ...], str] = {}  # by the scalars asked for
        database.create_schema(_DDL)

    @property
    def database(self) -> SqlDatabase:
        return self._db

    def _from_row(self, row: Sequence[Any]) -> VideoRecord:
        return VideoRecord(
            task_id=row[0],
            tenant_id=row[1],
            pipeline=row[2],
            webhook_url=row[3],
            metadata=load_json(row[4]),
            idempotency_key=row[5],
            request_hash=row[6],
            upload_keys=load_json(row[7]),
            content_type=row[8],
            max_bytes=row[9],
            upload_expires_at=self._db.load_timestamp(row[10]),
            created_at=self._db.load_timestamp(row[11]),
        )

    def create(self, video: VideoRecord) -> tuple[VideoRecord, bool]:
        """Insert ``video``; (the stored record, whether it was inserted now).

        When the task id, or the tenant's idempotency key, is taken already, the stored record is
        returned unchanged with ``False``. Raises the driver's integrity error if the task does not exist.
        """
        with self._db.transaction(write=True) as tx:
            inserted = tx.execute(
                f"INSERT INTO {self._videos} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (
                    video.task_id,
                    video.tenant_id,
                    video.pipeline,
                    video.webhook_url,
                    dump_json(video.metadata),
                    video.idempotency_key,
                    video.request_hash,
                    dump_json(video.upload_keys),
                    video.content_type,
                    video.max_bytes,
                    self._db.dump_timestamp(video.upload_expires_at),
                    self._db.dump_timestamp(video.created_at),
                ),
            )
            if video.idempotency_key is not None:
                rows = tx.query(
                    f"SELECT {_COLUMNS} FROM {self._videos} WHERE tenant_id = ? AND idempotency_key = ?",
                    (video.tenant_id, video.idempotency_key),
                )
            else:
                rows = []
            if not rows:
                rows = tx.query(f"SELECT {_COLUMNS} FROM {self._videos} WHERE task_id = ?", (video.task_id,))
        return self._from_row(rows[0]), bool(inserted)

    def get(self, task_id: str, *, tenant_id: str | None = None) -> VideoRecord:
        """The record of ``task_id``; with ``tenant_id``, only if that tenant owns it.

        Raises NotFoundError otherwise (another tenant's task is reported exactly like a missing one).
        """
        with self._db.transaction(write=False) as tx:
            rows = tx.query(f"SELECT {_COLUMNS} FROM {self._videos} WHERE task_id = ?", (task_id,))
        if not rows or (tenant_id is not None and rows[0][1] != tenant_id):
            raise NotFoundError(f"No video with id {task_id!r}.")
        return self._from_row(rows[0])

    def with_task_plan(
        self, task_id: str, *, tenant_id: str, scalars: Sequence[str] = ()
    ) -> ReadPlan[tuple[VideoRecord, TaskRecord, int, tuple[Any, ...]]]:
        """The tenant's video, its task, how many transitions its journal holds (they are numbered
        1, 2, ... and never removed, so the count names the journal) and the value of each of
        ``scalars``, in one query. A scalar is another store's scalar subquery about the task, with
        ``{task_id}`` where it names the task's id column (SqlTaskStore.FIRST_RUN_STARTED, say).
        Raises NotFoundError like :meth:`get`."""
        sql = self._with_task_sql.get(tuple(scalars))
        if sql is None:
            extra = "".join(f", {scalar.format(task_id='t.task_id')}" for scalar in scalars)
            sql = self._with_task_sql[tuple(scalars)] = (
                f"SELECT {_prefixed('v', _COLUMNS)}, {_prefixed('t', TASK_COLUMNS)}, t.last_seq{extra} "
                f"FROM {self._videos} v JOIN {self._tasks} t ON t.task_id = v.task_id WHERE v.task_id = ?"
            )
        rows = yield (sql, (task_id,))
        if not rows or rows[0][1] != tenant_id:
            raise NotFoundError(f"No video with id {task_id!r}.")
        row = rows[0]
        end = len(row) - len(scalars)
        task = task_from_row(self._db, row[_WIDTH : end - 1])
        return self._from_row(row[:_WIDTH]), task, int(row[end - 1]), tuple(row[end:])

    def find_by_idempotency_key(self, tenant_id: str, idempotency_key: str) -> VideoRecord | None:
        with self._db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT {_COLUMNS} FROM {self._videos} WHERE tenant_id = ? AND idempotency_key = ?",
                (tenant_id, idempotency_key),
            )
        return self._from_row(rows[0]) if rows else None

    def list_videos(
        self,
        tenant_id: str,
        *,
        limit: int = 20,
        cursor: str | None = None,
        statuses: Sequence[TaskStatus] = (),
    ) -> VideoPage:
        """The tenant's videos, newest first, ``limit`` per page; ``next_cursor`` fetches the next page.

        ``statuses`` keeps only videos whose task has one of them. Raises InvalidInputError
        (INVALID_CURSOR) for a cursor this store did not hand out, ValueError for limit < 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit}.")
        where = ["v.tenant_id = ?"]
        params: list[Any] = [tenant_id]
        if cursor is not None:
            created_at, row_id = _decode_cursor(cursor)
            stamp = self._db.dump_timestamp(created_at)
            where.append("(v.created_at < ? OR (v.created_at = ? AND v.id < ?))")
            params += [stamp, stamp, row_id]
        if statuses:
            where.append(f"t.status IN ({', '.join('?' for _ in statuses)})")
            params += [TaskStatus(s).value for s in statuses]
        sql = (
            f"SELECT {_prefixed('v', _COLUMNS)}, v.id FROM {self._videos} v "
            f"JOIN {self._tasks} t ON t.task_id = v.task_id "
            f"WHERE {' AND '.join(where)} ORDER BY v.created_at DESC, v.id DESC LIMIT ?"
        )
        with self._db.transaction(write=False) as tx:
            rows = tx.query(sql, (*params, limit + 1))
        videos = [self._from_row(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = _encode_cursor(self._db.load_timestamp(last[11]), int(last[12]))
        return VideoPage(videos=videos, next_cursor=next_cursor)


def _encode_cursor(created_at: datetime, row_id: int) -> str:
    raw = json.dumps([created_at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        created_at = datetime.fromisoformat(stamp)
        if not isinstance(row_id, int) or created_at.tzinfo is None:
            raise ValueError("bad cursor")
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidInputError(
            "This cursor was not handed out by GET /v1/videos; pass next_cursor as it came.",
            code="INVALID_CURSOR",
            details={"field": "cursor"},
        ) from exc
    return created_at, row_id
