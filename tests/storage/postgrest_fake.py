"""A loopback stand-in for Supabase's REST API (PostgREST under ``/rest/v1``), over the real PostgreSQL.

It serves the subset of PostgREST that supabase-py sends for SupabaseTaskStore, with the semantics
PostgREST documents (docs.postgrest.org: tables and views, RPC, Prefer headers, errors), and fails
loudly (400) on anything outside it:

- the gateway's ``apikey`` header must be a known key; ``Authorization: Bearer <JWT>`` (HS256 with the
  project's JWT secret) picks the role: each request is one transaction that runs
  ``SET LOCAL ROLE <role claim>`` and ``set_config('request.jwt.claims', <claims>, true)``, as PostgREST
  does, so grants and row-level security apply as on Supabase (no Bearer token: ``anon``);
- ``GET /rest/v1/<table>?select=a,b&<col>=<op>.<value>&order=c.desc,d&limit=&offset=`` with the operators
  eq, neq, gt, gte, lt, lte, in, is;
- ``POST /rest/v1/<table>[?on_conflict=a,b][&columns=a,b]`` with a JSON object or array of objects, and
  ``Prefer: return=minimal|representation``, ``resolution=ignore-duplicates|merge-duplicates``;
- ``PATCH /rest/v1/<table>?<filters>`` with a JSON object, ``Prefer: return=...``;
- ``POST /rest/v1/rpc/<function>`` with a JSON object of named arguments: the function's value as JSON;
- errors as ``{"code", "message", "details", "hint"}`` with PostgREST's SQLSTATE to HTTP status table.

Like PostgREST, it lets PostgreSQL do the JSON: bodies go through ``json_populate_recordset`` /
``json_to_record`` and rows come back through ``json_agg``, so types, nulls and timestamps are rendered
the way PostgREST renders them (for one database time zone, UTC here as on Supabase).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg
from psycopg import sql

RESERVED = {"select", "order", "limit", "offset", "on_conflict", "columns"}
OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt(claims: dict[str, Any], secret: str) -> str:
    """An HS256 JWT, as Supabase's keys and user sessions are."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def verify_jwt(token: str, secret: str) -> dict[str, Any]:
    """The claims of a valid HS256 token. Raises ValueError otherwise."""
    try:
        header, payload, signature = token.split(".")
        expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64url(expected), signature):
            raise ValueError("JWSError JWSInvalidSignature")
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc) or "invalid JWT") from exc
    if "exp" in claims and claims["exp"] < time.time():
        raise ValueError("JWT expired")
    return claims


class RequestError(Exception):
    """An error PostgREST itself answers (not one from the database)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def status_for(sqlstate: str, role: str) -> int:
    """PostgREST's table (docs.postgrest.org, Errors: HTTP Status Codes)."""
    exact = {"23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400, "42883": 404, "42P01": 404}
    if sqlstate in exact:
        return exact[sqlstate]
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    by_class = {
        "08": 503,
        "09": 500,
        "0L": 403,
        "0P": 403,
        "25": 500,
        "28": 403,
        "2D": 500,
        "38": 500,
        "39": 500,
        "3B": 500,
        "40": 500,
        "53": 503,
        "54": 500,
        "55": 500,
        "57": 500,
        "58": 500,
        "F0": 500,
        "HV": 500,
    }
    return by_class.get(sqlstate[:2], 400)


def _split_list(text: str) -> list[str]:
    """``(a,"b,c",d)`` -> ``['a', 'b,c', 'd']`` (PostgREST's in.() list: double quotes, backslash escapes)."""
    if not (text.startswith("(") and text.endswith(")")):
        raise RequestError(400, "PGRST100", f"in. needs a parenthesised list, got {text!r}")
    items: list[str] = []
    current, quoted, escaped, was_quoted = "", False, False, False
    for char in text[1:-1]:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted, was_quoted = not quoted, True
        elif char == "," and not quoted:
            items.append(current)
            current, was_quoted = "", False
        else:
            current += char
    if current or was_quoted or items:
        items.append(current)
    return items


@dataclass
class Request:
    method: str
    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any


@dataclass
class PostgrestServer:
    """``url`` is the project URL to give supabase-py; ``service_key`` and ``anon_key`` are its keys."""

    dsn: str
    jwt_secret: str = "test-jwt-secret-with-at-least-32-characters"
    schema: str = "public"
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.service_key = sign_jwt({"role": "service_role", "iss": "supabase"}, self.jwt_secret)
        self.anon_key = sign_jwt({"role": "anon", "iss": "supabase"}, self.jwt_secret)
        self._idle: list[psycopg.Connection[Any]] = []
        self._columns: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # -- database

    @contextmanager
    def _transaction(self, role: str, claims: dict[str, Any]) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None or connection.closed:
            connection = psycopg.connect(self.dsn, autocommit=True)
        try:
            with connection.transaction():
                connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                connection.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
                yield connection
        finally:
            if connection.closed or connection.broken:
                connection.close()
            else:
                with self._lock:
                    self._idle.append(connection)

    def _table_columns(self, connection: psycopg.Connection[Any], table: str) -> dict[str, str]:
        with self._lock:
            known = self._columns.get(table)
        if known is not None:
            return known
        rows = connection.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (self.schema, table),
        ).fetchall()
        if not rows:
            raise RequestError(404, "42P01", f'relation "{self.schema}.{table}" does not exist')
        columns = {name: type_ for name, type_ in rows}
        with self._lock:
            self._columns[table] = columns
        return columns

    # -- query pieces

    @staticmethod
    def _column(columns: dict[str, str], name: str) -> sql.Identifier:
        if name not in columns:
            raise RequestError(400, "42703", f"column {name!r} does not exist")
        return sql.Identifier(name)

    def _where(
        self, columns: dict[str, str], params: list[tuple[str, str]], alias: str
    ) -> tuple[sql.Composable, list[Any]]:
        conditions: list[sql.Composable] = []
        values: list[Any] = []
        for key, value in params:
            if key in RESERVED:
                continue
            target = sql.SQL("{}.{}").format(sql.Identifier(alias), self._column(columns, key))
            operator, _, operand = value.partition(".")
            cast = sql.SQL(columns[key])
            if operator in OPERATORS:
                conditions.append(sql.SQL("{} {} %s::{}").format(target, sql.SQL(OPERATORS[operator]), cast))
                values.append(operand)
            elif operator == "in":
                items = _split_list(operand)
                marks = sql.SQL(", ").join(sql.SQL("%s::{}").format(cast) for _ in items)
                conditions.append(sql.SQL("{} IN ({})").format(target, marks) if items else sql.SQL("false"))
                values.extend(items)
            elif operator == "is" and operand in ("null", "true", "false"):
                conditions.append(sql.SQL("{} IS {}").format(target, sql.SQL(operand.upper())))
            else:
                raise RequestError(400, "PGRST100", f"operator {operator!r} is not served by this fake")
        where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
        return where, values

    def _select_list(self, columns: dict[str, str], params: list[tuple[str, str]]) -> sql.Composable:
        select = dict(params).get("select", "*")
        if select == "*":
            return sql.SQL("*")
        names = select.split(",")
        if not all(_NAME.match(name) for name in names):
            raise RequestError(400, "PGRST100", f"select={select!r}: only plain column lists are served")
        return sql.SQL(", ").join(self._column(columns, name) for name in names)

    def _order_limit(self, columns: dict[str, str], params: list[tuple[str, str]]) -> sql.Composable:
        given = dict(params)
        parts: list[sql.Composable] = []
        if given.get("order"):
            terms = []
            for term in given["order"].split(","):
                name, *modifiers = term.split(".")
                direction = sql.SQL(" DESC" if "desc" in modifiers else " ASC")
                nulls = sql.SQL(
                    " NULLS FIRST" if "nullsfirst" in modifiers else " NULLS LAST" if "nullslast" in modifiers else ""
                )
                terms.append(sql.SQL("{}{}{}").format(self._column(columns, name), direction, nulls))
            parts.append(sql.SQL(" ORDER BY ") + sql.SQL(", ").join(terms))
        for key in ("limit", "offset"):
            if key in given:
                if not given[key].isdigit():
                    raise RequestError(400, "PGRST100", f"{key}={given[key]!r}")
                parts.append(sql.SQL(f" {key.upper()} {int(given[key])}"))
        return sql.Composed(parts)

    # -- requests

    def handle(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body or None, extra headers) for one request."""
        keys = {self.service_key, self.anon_key}
        if request.headers.get("apikey") not in keys:
            raise RequestError(401, "PGRST301", "No API key found in request, or it is not this project's")
        auth = request.headers.get("authorization", "")
        claims: dict[str, Any] = {"role": "anon"}
        if auth:
            if not auth.startswith("Bearer "):
                raise RequestError(401, "PGRST301", "Authorization must be a Bearer token")
            try:
                claims = verify_jwt(auth.removeprefix("Bearer "), self.jwt_secret)
            except ValueError as exc:
                raise RequestError(401, "PGRST301", str(exc)) from exc
        role = str(claims.get("role", "anon"))
        prefer = {
            part.split("=", 1)[0].strip(): part.split("=", 1)[-1].strip()
            for part in request.headers.get("prefer", "").split(",")
            if part.strip()
        }
        if request.headers.get("accept", "application/json").split(";")[0] not in ("application/json", "*/*"):
            raise RequestError(406, "PGRST107", "only application/json is served by this fake")
        path = request.path.removeprefix("/rest/v1/")
        if path == request.path or not path:
            raise RequestError(404, "PGRST125", f"no route {request.path!r}")
        try:
            with self._transaction(role, claims) as connection:
                if path.startswith("rpc/") and request.method == "POST":
                    return 200, self._rpc(connection, path.removeprefix("rpc/"), request.body), {}
                if "/" in path or not _NAME.match(path):
                    raise RequestError(404, "PGRST125", f"no route {request.path!r}")
                columns = self._table_columns(connection, path)
                if request.method == "GET":
                    rows = self._get(connection, path, columns, request.params)
                    return 200, rows, {"Content-Range": f"0-{len(rows) - 1}/*" if rows else "*/*"}
                if request.method == "POST":
                    rows = self._insert(connection, path, columns, request, prefer)
                    return 201, rows if prefer.get("return") == "representation" else None, {}
                if request.method == "PATCH":
                    rows = self._update(connection, path, columns, request, prefer)
                    if prefer.get("return") == "representation":
                        return 200, rows, {}
                    return 204, None, {}
                raise RequestError(405, "PGRST117", f"{request.method} is not served by this fake")
        except psycopg.Error as exc:
            diag = exc.diag
            sqlstate = diag.sqlstate or "XX000"
            body = {
                "code": sqlstate,
                "message": diag.message_primary,
                "details": diag.message_detail,
                "hint": diag.message_hint,
            }
            return status_for(sqlstate, role), body, {}

    def _get(
        self, connection: psycopg.Connection[Any], table: str, columns: dict[str, str], params: list[tuple[str, str]]
    ) -> list[Any]:
        where, values = self._where(columns, params, "_pgrst_t")
        query = sql.SQL(
            "SELECT coalesce(json_agg(_pgrst_r), '[]')::text FROM "
            "(SELECT {select} FROM {table} AS _pgrst_t WHERE {where}{tail}) AS _pgrst_r"
        ).format(
            select=self._select_list(columns, params),
            table=sql.Identifier(self.schema, table),
            where=where,
            tail=self._order_limit(columns, params),
        )
        return list(json.loads(connection.execute(query, values).fetchone()[0]))

    def _insert(
        self,
        connection: psycopg.Connection[Any],
        table: str,
        columns: dict[str, str],
        request: Request,
        prefer: dict[str, str],
    ) -> list[Any]:
        body = request.body
        rows = body if isinstance(body, list) else [body]
        if not rows or not all(isinstance(row, dict) for row in rows):
            raise RequestError(400, "PGRST102", "the body must be a JSON object or a non-empty array of objects")
        given = dict(request.params)
        names = given["columns"].split(",") if "columns" in given else list(rows[0])
        if "columns" not in given and any(set(row) != set(names) for row in rows):
            raise RequestError(400, "PGRST102", "All object keys must match")
        targets = sql.SQL(", ").join(self._column(columns, name) for name in names)
        conflict: sql.Composable = sql.SQL("")
        resolution = prefer.get("resolution")
        if resolution:
            keys = given.get("on_conflict")
            if not keys:  # PostgREST then uses the primary key
                raise RequestError(400, "PGRST100", "this fake needs on_conflict with a resolution")
            conflict_columns = sql.SQL(", ").join(self._column(columns, key) for key in keys.split(","))
            if resolution == "ignore-duplicates":
                conflict = sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(conflict_columns)
            elif resolution == "merge-duplicates":
                updates = sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in names
                )
                conflict = sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(conflict_columns, updates)
            else:
                raise RequestError(400, "PGRST100", f"resolution={resolution!r}")
        statement = sql.SQL(
            "INSERT INTO {table} ({targets}) SELECT {targets} FROM json_populate_recordset(NULL::{table}, %s::json)"
            "{conflict} RETURNING {returning}"
        ).format(
            table=sql.Identifier(self.schema, table),
            targets=targets,
            conflict=conflict,
            returning=self._select_list(columns, request.params)
            if prefer.get("return") == "representation"
            else sql.SQL("1"),
        )
        return self._returning(connection, statement, [json.dumps(rows)])

    def _update(
        self,
        connection: psycopg.Connection[Any],
        table: str,
        columns: dict[str, str],
        request: Request,
        prefer: dict[str, str],
    ) -> list[Any]:
        if not isinstance(request.body, dict) or not request.body:
            raise RequestError(400, "PGRST102", "the body must be a non-empty JSON object")
        where, values = self._where(columns, request.params, "_pgrst_t")
        sets = sql.SQL(", ").join(
            sql.SQL("{0} = _pgrst_b.{0}").format(self._column(columns, name)) for name in request.body
        )
        returning = (
            (
                sql.SQL("_pgrst_t.*")
                if dict(request.params).get("select", "*") == "*"
                else sql.SQL(", ").join(
                    sql.SQL("_pgrst_t.{}").format(self._column(columns, name))
                    for name in dict(request.params)["select"].split(",")
                )
            )
            if prefer.get("return") == "representation"
            else sql.SQL("1")
        )
        statement = sql.SQL(
            "UPDATE {table} AS _pgrst_t SET {sets} FROM json_populate_record(NULL::{table}, %s::json) AS _pgrst_b "
            "WHERE {where} RETURNING {returning}"
        ).format(table=sql.Identifier(self.schema, table), sets=sets, where=where, returning=returning)
        return self._returning(connection, statement, [json.dumps(request.body), *values])

    @staticmethod
    def _returning(connection: psycopg.Connection[Any], statement: sql.Composable, values: list[Any]) -> list[Any]:
        query = sql.SQL("WITH _pgrst_w AS ({}) SELECT coalesce(json_agg(_pgrst_w), '[]')::text FROM _pgrst_w").format(
            statement
        )
        return list(json.loads(connection.execute(query, values).fetchone()[0]))

    def _rpc(self, connection: psycopg.Connection[Any], function: str, body: Any) -> Any:
        if not _NAME.match(function):
            raise RequestError(404, "PGRST202", f"Could not find the function {function!r}")
        arguments = body if isinstance(body, dict) else {}
        candidates = connection.execute(
            "SELECT p.proargnames, p.proargtypes::regtype[]::text[], p.proretset FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.proname = %s",
            (self.schema, function),
        ).fetchall()
        matching = [
            (names, types)
            for names, types, returns_set in candidates
            if set(names or []) == set(arguments) and not returns_set
        ]
        if not matching:
            raise RequestError(
                404,
                "PGRST202",
                f"Could not find the function {self.schema}.{function}({', '.join(sorted(arguments))}) "
                "in the schema cache",
            )
        names, types = matching[0]
        call_arguments = sql.SQL(", ").join(
            sql.SQL("{0} => _pgrst_a.{0}").format(sql.Identifier(name)) for name in names
        )
        definitions = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(type_))
            for name, type_ in zip(names, types, strict=True)
        )
        query = sql.SQL(
            "SELECT to_json({function}({arguments}))::text FROM json_to_record(%s::json) AS _pgrst_a({defs})"
        ).format(function=sql.Identifier(self.schema, function), arguments=call_arguments, defs=definitions)
        return json.loads(connection.execute(query, [json.dumps(arguments)]).fetchone()[0])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                headers = {key.lower(): value for key, value in self.headers.items()}
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                request = Request(
                    self.command, parts.path, parse_qsl(parts.query, keep_blank_values=True), headers, body
                )
                server.requests.append(request)
                try:
                    status, payload, extra = server.handle(request)
                except RequestError as exc:
                    status, payload, extra = (
                        exc.status,
                        {"code": exc.code, "message": exc.message, "details": None, "hint": None},
                        {},
                    )
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        return Handler


@contextmanager
def postgrest_server(dsn: str) -> Iterator[PostgrestServer]:
    server = PostgrestServer(dsn)
    server.start()
    try:
        yield server
    finally:
        server.stop()
