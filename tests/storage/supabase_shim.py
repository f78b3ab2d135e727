"""A plain PostgreSQL made to look like a Supabase database, for the migrations' tests.

Supabase provides the roles ``anon``, ``authenticated`` and ``service_role`` (BYPASSRLS), the ``auth``
schema with ``auth.jwt()`` and ``auth.uid()`` (reading the ``request.jwt.claims`` setting PostgREST sets
per request), and default privileges that grant those roles everything on new objects in ``public``.
The migrations (infra/supabase/migrations) rely on them and never create them; this module does, in
the test setup only: the roles once per cluster (guarded, left in place: other test databases may use
them), the rest in a fresh database per test session, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "infra" / "supabase" / "migrations"

_ROLES = (
    ("anon", "NOLOGIN NOINHERIT"),
    ("authenticated", "NOLOGIN NOINHERIT"),
    ("service_role", "NOLOGIN NOINHERIT BYPASSRLS"),
)

_AUTH_SHIM = """
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
    )::uuid
$$;
CREATE OR REPLACE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
    )::text
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""


def migration_files() -> list[Path]:
    """In the order the Supabase CLI applies them: by their timestamp prefix."""
    return sorted(MIGRATIONS_DIR.glob("*.sql"))


def ensure_roles(connection: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create Supabase's API roles in the cluster if missing (concurrent callers are fine)."""
    for name, options in _ROLES:
        connection.execute(
            f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
                    CREATE ROLE {name} {options};
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$
            """
        )


def apply_migrations(dsn: str) -> None:
    """Run every migration file, each in its own transaction, as the Supabase CLI does."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        for path in migration_files():
            with connection.transaction():
                connection.execute(path.read_text())


@contextmanager
def supabase_like_database(server_dsn: str) -> Iterator[str]:
    """A fresh database with Supabase's roles, auth shim and default privileges: its DSN. Dropped after."""
    name = f"vidluxe_supabase_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        ensure_roles(connection)
        connection.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(server_dsn, dbname=name)
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(_AUTH_SHIM)
        yield dsn
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
