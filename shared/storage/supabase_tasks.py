"""The task store over Supabase's HTTP API (PostgREST), through supabase-py: for Lambdas.

A Lambda container that holds PostgreSQL connections keeps them open between invocations, and many
containers exhaust the database's connections; over HTTPS each call is one request and nothing stays
open. The tables are the SQL task store's (apply infra/supabase/migrations), and the behaviour is
:class:`~shared.storage.sql_tasks.SqlTaskStore`'s, request by request:

- ``create_task``: ``POST /rest/v1/tasks?on_conflict=task_id`` with ``Prefer: resolution=ignore-duplicates``
  (``INSERT ... ON CONFLICT DO NOTHING``): an existing id inserts nothing, and the stored task is read.
- ``update_status_if``: one ``PATCH /rest/v1/tasks?task_id=eq.<id>&status=in.(...)``, which PostgREST runs
  as one ``UPDATE ... WHERE``: of concurrent callers, one wins.
- ``record_transition``: ``POST /rest/v1/rpc/record_task_transition`` (a function of the migrations): the
  next seq and the insert in one transaction; the first recording of a position wins, seqs stay gapless.
- the reads that must tell an unknown task from an empty list ask for the task first (two requests, not
  one transaction: tasks are never deleted, so nothing is lost).

It authenticates with the service_role key, which row-level security does not restrict. Errors are
supabase-py's (``postgrest.APIError``, ``httpx.HTTPError``), except NotFoundError for an unknown task.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from shared.errors import NotFoundError
from shared.storage.sql import utc
from shared.storage.tasks import (
    ResourceUsage,
    StageReport,
    StageRunStatus,
    TaskRecord,
    TaskStatus,
    TransitionRecord,
)

if TYPE_CHECKING:
    from postgrest import SyncPostgrestClient, SyncRequestBuilder
    from supabase import Client

    from shared.clock import Clock

RECORD_TRANSITION_FUNCTION = "record_task_transition"
_FOREIGN_KEY_VIOLATION = "23503"
_TASK_COLUMNS = "task_id,pipeline,status,input,output,current_stage,error_code,error_message,created_at,updated_at"
_TRANSITION_COLUMNS = "task_id,seq,position,state_name,state_type,output,next_state,recorded_at"
_STAGE_RUN_COLUMNS = (
    "task_id,stage,status,attempt,started_at,ended_at,duration_seconds,input_hash,usage,error_code,error_message"
)


def _dump_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with microseconds (a naive datetime is taken to be UTC), as timestamptz accepts."""
    return utc(value).isoformat(timespec="microseconds")


def _load_timestamp(value: Any) -> datetime:
    """A timestamptz as PostgREST renders it (``2026-01-02T03:04:05.123456+00:00``), in UTC."""
    return utc(datetime.fromisoformat(value))


def _rows(data: Any) -> list[Mapping[str, Any]]:
    return [row for row in data if isinstance(row, Mapping)] if isinstance(data, list) else []


class SupabaseTaskStore:
    """The TaskStore over a supabase-py :class:`supabase.Client` built with the service_role key.

    Safe to share between threads (one httpx client; each call builds its own request). ``close``
    closes the HTTP connections; later calls raise RuntimeError.
    """

    def __init__(self, client: Client, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self._closed = False
        # Built now: supabase-py creates its PostgREST client lazily, which is not thread-safe.
        self._rest: SyncPostgrestClient = client.postgrest

    @classmethod
    def from_url(cls, url: str, service_role_key: str, clock: Clock, *, timeout: float = 30.0) -> SupabaseTaskStore:
        """A client for the project URL (``https://<project>.supabase.co``) and its service_role key.

        No request is made yet. Raises ValueError for a URL that is not http(s) or an empty key.
        """
        import httpx
        from supabase import ClientOptions, create_client

        if not url.startswith(("https://", "http://")):
            raise ValueError(f"The Supabase URL must start with https://, not {url!r}.")
        if not service_role_key:
            raise ValueError("The Supabase service_role key is empty.")
        options = ClientOptions(
            httpx_client=httpx.Client(timeout=timeout, http2=True),  # closed by close()
            auto_refresh_token=False,
            persist_session=False,
        )
        return cls(create_client(url, service_role_key, options), clock)

    def _table(self, name: str) -> SyncRequestBuilder:
        if self._closed:
            raise RuntimeError("The task store is closed.")
        return self._rest.from_(name)

    # -- rows

    def _task(self, row: Mapping[str, Any]) -> TaskRecord:
        return TaskRecord(
            task_id=row["task_id"],
            pipeline=row["pipeline"],
            status=TaskStatus(row["status"]),
            input=row["input"],
            output=row["output"],
            current_stage=row["current_stage"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            created_at=_load_timestamp(row["created_at"]),
            updated_at=_load_timestamp(row["updated_at"]),
        )

    def _transition(self, row: Mapping[str, Any]) -> TransitionRecord:
        return TransitionRecord(
            task_id=row["task_id"],
            seq=row["seq"],
            position=row["position"],
            state_name=row["state_name"],
            state_type=row["state_type"],
            output=row["output"],
            next_state=row["next_state"],
            recorded_at=_load_timestamp(row["recorded_at"]),
        )

    def _stage_run(self, row: Mapping[str, Any]) -> StageReport:
        return StageReport(
            task_id=row["task_id"],
            stage=row["stage"],
            status=StageRunStatus(row["status"]),
            attempt=row["attempt"],
            started_at=_load_timestamp(row["started_at"]),
            ended_at=_load_timestamp(row["ended_at"]),
            duration_seconds=row["duration_seconds"],
            input_hash=row["input_hash"],
            usage=ResourceUsage.model_validate(row["usage"]),
            error_code=row["error_code"],
            error_message=row["error_message"],
        )

    def _require_task(self, task_id: str) -> None:
        if not _rows(self._table("tasks").select("task_id").eq("task_id", task_id).execute().data):
            raise NotFoundError(f"No task with id {task_id!r}.")

    # -- TaskStore

    def create_task(self, task: TaskRecord) -> TaskRecord:
        """Insert ``task``; if the id exists already, return the stored task unchanged."""
        data = task.model_dump(mode="json")
        row = {
            "task_id": task.task_id,
            "pipeline": task.pipeline,
            "status": TaskStatus(task.status).value,
            "input": data["input"],
            "output": data["output"],
            "current_stage": task.current_stage,
            "error_code": task.error_code,
            "error_message": task.error_message,
            "created_at": _dump_timestamp(task.created_at),
            "updated_at": _dump_timestamp(task.updated_at),
        }
        inserted = _rows(self._table("tasks").upsert(row, on_conflict="task_id", ignore_duplicates=True).execute().data)
        return self._task(inserted[0]) if inserted else self.get_task(task.task_id)

    def get_task(self, task_id: str) -> TaskRecord:
        """Raises NotFoundError for an unknown id."""
        rows = _rows(self._table("tasks").select(_TASK_COLUMNS).eq("task_id", task_id).execute().data)
        if not rows:
            raise NotFoundError(f"No task with id {task_id!r}.")
        return self._task(rows[0])

    def list_tasks(self, *, limit: int = 50, status: TaskStatus | None = None) -> list[TaskRecord]:
        """Most recently created first (ties: most recently inserted first). Raises ValueError if limit < 0."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}.")
        if limit == 0:
            return []
        query = self._table("tasks").select(_TASK_COLUMNS)
        if status is not None:
            query = query.eq("status", TaskStatus(status).value)
        response = query.order("created_at", desc=True).order("id", desc=True).limit(limit).execute()
        return [self._task(row) for row in _rows(response.data)]

    def update_task(
        self,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        current_stage: str | None = None,
        output: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        clear_error: bool = False,
    ) -> TaskRecord:
        """Set the given fields (None leaves a field as it is) and bump updated_at to the clock's now.

        ``clear_error`` sets error_code and error_message to NULL, except one given in the same call.
        Raises NotFoundError for an unknown id.
        """
        values: dict[str, Any] = {"updated_at": _dump_timestamp(self._clock.now())}
        if status is not None:
            values["status"] = TaskStatus(status).value
        if current_stage is not None:
            values["current_stage"] = current_stage
        if output is not None:
            values["output"] = to_jsonable_python(output)
        if error_code is not None or clear_error:
            values["error_code"] = error_code
        if error_message is not None or clear_error:
            values["error_message"] = error_message
        rows = _rows(self._table("tasks").update(values).eq("task_id", task_id).execute().data)
        if not rows:
            raise NotFoundError(f"No task with id {task_id!r}.")
        return self._task(rows[0])

    def update_status_if(
        self,
        task_id: str,
        *,
        expected: Collection[TaskStatus],
        status: TaskStatus,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> TaskRecord | None:
        """Set ``status`` (and bump updated_at) only if the task's status is one of ``expected``.

        One PATCH, one UPDATE ... WHERE status IN (...): of concurrent callers, one wins. ``error_code``
        and ``error_message`` are set with it (NULL when not given). Returns the updated task, or None
        when its status was not expected. Raises NotFoundError for an unknown id.
        """
        wanted = [TaskStatus(s).value for s in expected]
        if not wanted:
            return None
        values = {
            "status": TaskStatus(status).value,
            "error_code": error_code,
            "error_message": error_message,
            "updated_at": _dump_timestamp(self._clock.now()),
        }
        rows = _rows(self._table("tasks").update(values).eq("task_id", task_id).in_("status", wanted).execute().data)
        if rows:
            return self._task(rows[0])
        self._require_task(task_id)
        return None

    def record_transition(self, transition: TransitionRecord) -> None:
        """Persist a completed state; recording the same (task_id, position) twice keeps the first.

        The database assigns ``seq`` (1, 2, 3, ... per task, in recording order; the given seq is
        ignored). Raises NotFoundError for an unknown task id.
        """
        if self._closed:
            raise RuntimeError("The task store is closed.")
        params = {
            "p_task_id": transition.task_id,
            "p_position": transition.position,
            "p_state_name": transition.state_name,
            "p_state_type": transition.state_type,
            "p_output": transition.model_dump(mode="json")["output"],
            "p_next_state": transition.next_state,
            "p_recorded_at": _dump_timestamp(transition.recorded_at),
        }
        outcome = self._rest.rpc(RECORD_TRANSITION_FUNCTION, params).execute().data
        if outcome == "no_task":
            raise NotFoundError(f"No task with id {transition.task_id!r}.")
        if outcome not in ("recorded", "duplicate"):
            raise RuntimeError(f"{RECORD_TRANSITION_FUNCTION} answered {outcome!r}: are the migrations applied?")

    def get_transition(self, task_id: str, position: str) -> TransitionRecord | None:
        """The transition at ``position``, or None if none was recorded. Raises NotFoundError for an
        unknown task id."""
        self._require_task(task_id)
        rows = _rows(
            self._table("transitions")
            .select(_TRANSITION_COLUMNS)
            .eq("task_id", task_id)
            .eq("position", position)
            .execute()
            .data
        )
        return self._transition(rows[0]) if rows else None

    def list_transitions(self, task_id: str) -> list[TransitionRecord]:
        """In the order they were recorded. Raises NotFoundError for an unknown task id."""
        self._require_task(task_id)
        response = self._table("transitions").select(_TRANSITION_COLUMNS).eq("task_id", task_id).order("seq").execute()
        return [self._transition(row) for row in _rows(response.data)]

    def record_stage_run(self, report: StageReport) -> None:
        """Append one stage run. Raises NotFoundError for an unknown task id."""
        from postgrest import APIError
        from postgrest.types import ReturnMethod

        row = {
            "task_id": report.task_id,
            "stage": report.stage,
            "status": StageRunStatus(report.status).value,
            "attempt": report.attempt,
            "started_at": _dump_timestamp(report.started_at),
            "ended_at": _dump_timestamp(report.ended_at),
            "duration_seconds": report.duration_seconds,
            "input_hash": report.input_hash,
            "usage": report.usage.model_dump(mode="json"),
            "error_code": report.error_code,
            "error_message": report.error_message,
        }
        try:
            self._table("stage_runs").insert(row, returning=ReturnMethod.minimal).execute()
        except APIError as exc:
            if exc.code == _FOREIGN_KEY_VIOLATION:  # stage_runs.task_id references tasks
                raise NotFoundError(f"No task with id {report.task_id!r}.") from exc
            raise

    def list_stage_runs(self, task_id: str) -> list[StageReport]:
        """In the order they started (ties: recording order). Raises NotFoundError for an unknown task id."""
        self._require_task(task_id)
        response = (
            self._table("stage_runs")
            .select(_STAGE_RUN_COLUMNS)
            .eq("task_id", task_id)
            .order("started_at")
            .order("id")
            .execute()
        )
        return [self._stage_run(row) for row in _rows(response.data)]

    def ping(self) -> None:
        """Raise (APIError, httpx.HTTPError) if the API cannot be reached or the tasks table is missing."""
        self._table("tasks").select("task_id").limit(1).execute()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._rest.aclose()

    def __enter__(self) -> SupabaseTaskStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
