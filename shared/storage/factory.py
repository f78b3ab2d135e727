"""Build the configured backend of each storage interface from :class:`Settings`.

Backends are imported only when chosen, so the embedded setup never imports boto3, psycopg or redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from shared.clock import Clock
    from shared.settings import Settings
    from shared.storage.cache import Cache
    from shared.storage.objects import ObjectStore
    from shared.storage.sql import SqlDatabase
    from shared.storage.tasks import TaskStore


def build_object_store(settings: Settings) -> ObjectStore:
    """``local``: files under ``<home>/objects`` (created); ``s3``: S3, R2 or MinIO.

    Raises ConfigurationError when the s3 backend has no bucket (VIDLUXE_S3_BUCKET).
    """
    if settings.object_store == "s3":
        from shared.storage.s3_objects import S3ObjectStore

        return S3ObjectStore.from_settings(settings)
    if settings.object_store == "local":
        from shared.storage.local_objects import LocalObjectStore

        return LocalObjectStore(settings.objects_dir)
    raise ConfigurationError(f"Unknown object store {settings.object_store!r}: set VIDLUXE_OBJECT_STORE.")


def build_database(settings: Settings, *, pool_size: int = 4) -> SqlDatabase:
    """The SQL database the SQL stores share: ``sqlite``: ``<home>/tasks.sqlite3`` (directory created);
    ``postgres``: VIDLUXE_DATABASE_URL (tables in its search_path).

    Several stores (tasks, tenants, the webhook outbox, costs) are built over one database and each
    creates its own tables; the caller closes the database. Raises ConfigurationError when the postgres
    backend has no database URL; the backend's own errors (e.g. sqlite3.DatabaseError) when the
    database cannot be opened.
    """
    if settings.task_store == "postgres":
        if not settings.database_url:
            raise ConfigurationError(
                "The postgres task store needs a database: set VIDLUXE_DATABASE_URL "
                "(postgresql://user:password@host:5432/dbname)."
            )
        from shared.storage.sql import PostgresDatabase

        return PostgresDatabase(
            settings.database_url, pool_size=pool_size, prepared_statements=settings.database_prepared_statements
        )
    if settings.task_store == "sqlite":
        from shared.storage.sql import SqliteDatabase

        return SqliteDatabase(settings.sqlite_path)
    if settings.task_store == "supabase":
        raise ConfigurationError(
            "The supabase task store speaks HTTP and has no SQL database for the other stores (tenants, "
            "videos, webhooks, costs): where they are needed, use VIDLUXE_TASK_STORE=postgres with "
            "VIDLUXE_DATABASE_URL set to the Supabase database's connection string."
        )
    raise ConfigurationError(f"Unknown task store {settings.task_store!r}: set VIDLUXE_TASK_STORE.")


def build_task_store(settings: Settings, clock: Clock, *, database: SqlDatabase | None = None) -> TaskStore:
    """The task store over ``database`` (shared, not closed by the store), or over a database of its own
    built by :func:`build_database` (closed with the store).

    ``supabase``: over Supabase's HTTP API (PostgREST), for Lambdas: no connection pool, and
    ``database`` is not used.

    Raises ConfigurationError when the postgres backend has no database URL, or the supabase backend no
    URL or key; the backend's own errors (e.g. psycopg.OperationalError) when the database cannot be
    opened.
    """
    from shared.storage.sql_tasks import PostgresTaskStore, SqliteTaskStore, SqlTaskStore

    if database is not None and settings.task_store != "supabase":
        return SqlTaskStore(database, clock)
    if settings.task_store == "postgres":
        if not settings.database_url:
            raise ConfigurationError(
                "The postgres task store needs a database: set VIDLUXE_DATABASE_URL "
                "(postgresql://user:password@host:5432/dbname)."
            )
        return PostgresTaskStore(
            settings.database_url, clock, prepared_statements=settings.database_prepared_statements
        )
    if settings.task_store == "sqlite":
        return SqliteTaskStore(settings.sqlite_path, clock)
    if settings.task_store == "supabase":
        from shared.storage.supabase_tasks import SupabaseTaskStore

        if not settings.supabase_url or settings.supabase_service_role_key is None:
            raise ConfigurationError(
                "The supabase task store needs the project URL and its service_role key: set "
                "VIDLUXE_SUPABASE_URL and VIDLUXE_SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_URL and "
                "SUPABASE_SERVICE_ROLE_KEY)."
            )
        return SupabaseTaskStore.from_url(
            settings.supabase_url, settings.supabase_service_role_key.get_secret_value(), clock
        )
    raise ConfigurationError(f"Unknown task store {settings.task_store!r}: set VIDLUXE_TASK_STORE.")


def build_cache(settings: Settings, clock: Clock) -> Cache:
    """``local``: ``<home>/cache.sqlite3`` (directory created); ``redis``: VIDLUXE_REDIS_URL;
    ``upstash``: Upstash's REST API (UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN).

    Raises ConfigurationError when the redis backend has an empty or malformed URL, or the upstash
    backend lacks its URL or token.
    """
    if settings.cache == "redis":
        if not settings.redis_url:
            raise ConfigurationError(
                "The redis cache needs a server: set VIDLUXE_REDIS_URL (redis://host:6379/0)."
            )
        from shared.storage.redis_cache import RedisCache

        try:
            return RedisCache.from_url(settings.redis_url)
        except ValueError as exc:
            raise ConfigurationError(f"VIDLUXE_REDIS_URL is not a Redis URL: {exc}") from exc
    if settings.cache == "upstash":
        token = settings.upstash_redis_rest_token
        if not settings.upstash_redis_rest_url or token is None or not token.get_secret_value():
            raise ConfigurationError(
                "The upstash cache needs the database's REST URL and token: set UPSTASH_REDIS_REST_URL "
                "and UPSTASH_REDIS_REST_TOKEN (or VIDLUXE_UPSTASH_REDIS_REST_URL and _TOKEN), as the "
                "Upstash console shows them."
            )
        from shared.storage.upstash_cache import UpstashCache

        try:
            return UpstashCache.from_url(settings.upstash_redis_rest_url, token.get_secret_value())
        except ValueError as exc:
            raise ConfigurationError(f"UPSTASH_REDIS_REST_URL: {exc}") from exc
    if settings.cache == "local":
        from shared.storage.local_cache import LocalCache

        return LocalCache(settings.cache_path, clock)
    raise ConfigurationError(f"Unknown cache {settings.cache!r}: set VIDLUXE_CACHE.")
