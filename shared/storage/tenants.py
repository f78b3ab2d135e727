"""Tenants, their API keys and their webhook signing secrets, in the shared SQL database.

An API key is ``vlx_`` and 43 URL-safe random characters (256 bits). Only its SHA-256 is stored, with
a short prefix (``vlx_`` and 8 characters) for display; a request's key is found by its hash (a hash
of an unguessable secret leaks nothing through lookup timing) and the stored hash is compared again
in constant time.

A signing secret is ``whsec_`` and the base64 of 24 random bytes: the Standard Webhooks format. It is
stored as it is (the sender needs it to sign). Rotating makes a new current secret and keeps the
previous one valid for a grace period, during which deliveries are signed with both.

The API authenticates every request with :meth:`TenantStore.authenticate_async`, which remembers a
valid key for :data:`KEY_CACHE_SECONDS`: a poller then costs no database round trip for its key. A
key revoked through this store (:meth:`TenantStore.revoke_api_key`) is forgotten at once; one revoked
by another process (another server on the same database) keeps working in this one for at most that
long. Unknown and revoked keys are never remembered, so they are refused at once, every time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.errors import InvalidInputError, NotFoundError
from shared.storage.sql import ReadPlan, SqlDatabase, Transaction

if TYPE_CHECKING:
    from shared.clock import Clock

API_KEY_PREFIX = "vlx_"
SIGNING_SECRET_PREFIX = "whsec_"
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
_KEY_DISPLAY_CHARS = 8
_TENANT_NAME_MAX = 100
KEY_CACHE_SECONDS = 10.0
"""How long :meth:`TenantStore.authenticate_async` trusts a key it found valid (see the module docstring)."""
_KEY_CACHE_MAX = 10_000  # keys remembered at once; the oldest is forgotten first

_DDL = """
CREATE TABLE IF NOT EXISTS {tenants} (
    id {identity},
    tenant_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    created_at {timestamp} NOT NULL
);
CREATE TABLE IF NOT EXISTS {api_keys} (
    id {identity},
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES {tenants} (tenant_id),
    created_at {timestamp} NOT NULL,
    revoked_at {timestamp}
);
CREATE INDEX IF NOT EXISTS api_keys_tenant_idx ON {api_keys} (tenant_id);
CREATE TABLE IF NOT EXISTS {signing_secrets} (
    id {identity},
    tenant_id TEXT NOT NULL REFERENCES {tenants} (tenant_id),
    secret TEXT NOT NULL,
    created_at {timestamp} NOT NULL,
    expires_at {timestamp}
);
CREATE INDEX IF NOT EXISTS signing_secrets_tenant_idx ON {signing_secrets} (tenant_id, id)
"""


class Tenant(BaseModel):
    tenant_id: str
    name: str
    created_at: datetime


class ApiKeyInfo(BaseModel):
    """What is kept of a key: never the key itself."""

    key_prefix: str
    tenant_id: str
    created_at: datetime
    revoked_at: datetime | None = None


class SigningSecret(BaseModel):
    secret: str
    created_at: datetime
    expires_at: datetime | None = None  # None: the current secret


class IssuedKey(BaseModel):
    """The result of ``vidluxe keys create``: the only time the key is seen in full."""

    tenant: Tenant
    api_key: str
    key_prefix: str
    signing_secret: str


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _well_formed(api_key: str) -> bool:
    return api_key.startswith(API_KEY_PREFIX) and len(api_key) <= 200


def new_signing_secret() -> str:
    """``whsec_`` + base64 of 24 random bytes (Standard Webhooks)."""
    return SIGNING_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class TenantStore:
    """Tenants, API keys and signing secrets over a (shared) :class:`SqlDatabase`.

    Implements ``web_hooks.events.SigningSecrets`` (:meth:`signing_secrets`).
    """

    def __init__(
        self, database: SqlDatabase, clock: Clock, *, rotation_grace: timedelta = DEFAULT_ROTATION_GRACE
    ) -> None:
        """Create the tables if missing; raises the driver's error if the database cannot be reached."""
        self._db = database
        self._clock = clock
        self._grace = rotation_grace
        self._tenants = database.table("tenants")
        self._keys = database.table("api_keys")
        self._secrets = database.table("signing_secrets")
        # key hash -> (tenant, monotonic deadline); dict order is insertion order, oldest first.
        self._valid_keys: dict[str, tuple[Tenant, float]] = {}
        self._valid_keys_lock = threading.Lock()
        self._revocations = 0  # a read that began before a revocation must not be remembered
        database.create_schema(_DDL)

    # -- tenants

    def _tenant_from_row(self, row: Sequence[Any]) -> Tenant:
        return Tenant(tenant_id=row[0], name=row[1], created_at=self._db.load_timestamp(row[2]))

    def ensure_tenant(self, name: str) -> Tenant:
        """The tenant called ``name``, created (with a signing secret) if there is none.

        Raises InvalidInputError (INVALID_TENANT_NAME) for an empty or overlong name.
        """
        name = name.strip()
        if not name or len(name) > _TENANT_NAME_MAX:
            raise InvalidInputError(
                f"A tenant name must have 1 to {_TENANT_NAME_MAX} characters.", code="INVALID_TENANT_NAME"
            )
        now = self._db.dump_timestamp(self._clock.now())
        with self._db.transaction(write=True) as tx:
            inserted = tx.execute(
                f"INSERT INTO {self._tenants} (tenant_id, name, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (f"ten_{uuid.uuid4().hex}", name, now),
            )
            rows = tx.query(f"SELECT tenant_id, name, created_at FROM {self._tenants} WHERE name = ?", (name,))
            tenant = self._tenant_from_row(rows[0])
            if inserted:
                self._insert_secret(tx, tenant.tenant_id, now)
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Raises NotFoundError for an unknown id."""
        with self._db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT tenant_id, name, created_at FROM {self._tenants} WHERE tenant_id = ?", (tenant_id,)
            )
        if not rows:
            raise NotFoundError(f"No tenant with id {tenant_id!r}.")
        return self._tenant_from_row(rows[0])

    # -- API keys

    def create_api_key(self, tenant_id: str) -> tuple[str, ApiKeyInfo]:
        """A new key for the tenant: (the key, shown once; what is stored). Raises NotFoundError."""
        api_key = new_api_key()
        info = ApiKeyInfo(
            key_prefix=api_key[: len(API_KEY_PREFIX) + _KEY_DISPLAY_CHARS],
            tenant_id=tenant_id,
            created_at=self._clock.now(),
        )
        with self._db.transaction(write=True) as tx:
            self._require_tenant(tx, tenant_id)
            tx.execute(
                f"INSERT INTO {self._keys} (key_hash, key_prefix, tenant_id, created_at) VALUES (?, ?, ?, ?)",
                (hash_api_key(api_key), info.key_prefix, tenant_id, self._db.dump_timestamp(info.created_at)),
            )
        return api_key, info

    def issue_key(self, tenant_name: str) -> IssuedKey:
        """``vidluxe keys create``: the tenant (created if new), a new key, and the current signing secret."""
        tenant = self.ensure_tenant(tenant_name)
        api_key, info = self.create_api_key(tenant.tenant_id)
        return IssuedKey(
            tenant=tenant,
            api_key=api_key,
            key_prefix=info.key_prefix,
            signing_secret=self.current_secret(tenant.tenant_id).secret,
        )

    def authenticate(self, api_key: str) -> Tenant | None:
        """The tenant owning an unrevoked ``api_key``, or None (unknown, revoked or malformed key)."""
        if not _well_formed(api_key):
            return None
        return self.tenant_for_key_hash(hash_api_key(api_key))

    async def authenticate_async(self, api_key: str) -> Tenant | None:
        """:meth:`authenticate` from an event loop (no thread hand-off); a key found valid in the last
        :data:`KEY_CACHE_SECONDS` is answered from memory."""
        if not _well_formed(api_key):
            return None
        digest = hash_api_key(api_key)
        now = time.monotonic()
        cached = self._valid_keys.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        revocations = self._revocations
        tenant = await self._db.read_async(self._key_plan(digest))
        with self._valid_keys_lock:
            self._valid_keys.pop(digest, None)
            if tenant is not None and revocations == self._revocations:
                if len(self._valid_keys) >= _KEY_CACHE_MAX:
                    del self._valid_keys[next(iter(self._valid_keys))]
                self._valid_keys[digest] = (tenant, now + KEY_CACHE_SECONDS)
        return tenant

    def tenant_for_key_hash(self, digest: str) -> Tenant | None:
        """The tenant owning the unrevoked key whose SHA-256 is ``digest`` (what a dashboard session
        keeps instead of the key), or None."""
        return self._db.read(self._key_plan(digest))

    def _key_plan(self, digest: str) -> ReadPlan[Tenant | None]:
        rows = yield (
            f"SELECT k.key_hash, t.tenant_id, t.name, t.created_at FROM {self._keys} k "
            f"JOIN {self._tenants} t ON t.tenant_id = k.tenant_id "
            "WHERE k.key_hash = ? AND k.revoked_at IS NULL",
            (digest,),
        )
        if not rows or not hmac.compare_digest(rows[0][0], digest):
            return None
        return self._tenant_from_row(rows[0][1:])

    def revoke_api_key(self, api_key: str) -> bool:
        """Revoke a key; returns whether an unrevoked key was found. This store forgets it at once."""
        digest = hash_api_key(api_key)
        with self._db.transaction(write=True) as tx:
            revoked = tx.execute(
                f"UPDATE {self._keys} SET revoked_at = ? WHERE key_hash = ? AND revoked_at IS NULL",
                (self._db.dump_timestamp(self._clock.now()), digest),
            )
        with self._valid_keys_lock:
            self._revocations += 1
            self._valid_keys.pop(digest, None)
        return bool(revoked)

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyInfo]:
        with self._db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT key_prefix, tenant_id, created_at, revoked_at FROM {self._keys} "
                "WHERE tenant_id = ? ORDER BY id",
                (tenant_id,),
            )
        return [
            ApiKeyInfo(
                key_prefix=row[0],
                tenant_id=row[1],
                created_at=self._db.load_timestamp(row[2]),
                revoked_at=None if row[3] is None else self._db.load_timestamp(row[3]),
            )
            for row in rows
        ]

    # -- signing secrets

    def _insert_secret(self, tx: Transaction, tenant_id: str, now: Any) -> str:
        secret = new_signing_secret()
        tx.execute(
            f"INSERT INTO {self._secrets} (tenant_id, secret, created_at, expires_at) VALUES (?, ?, ?, NULL)",
            (tenant_id, secret, now),
        )
        return secret

    def _secret_rows(self, tx: Transaction, tenant_id: str) -> list[SigningSecret]:
        """Valid secrets: the current one first, then previous ones until they expire, newest first."""
        rows = tx.query(
            f"SELECT secret, created_at, expires_at FROM {self._secrets} "
            "WHERE tenant_id = ? AND (expires_at IS NULL OR expires_at > ?) "
            "ORDER BY (CASE WHEN expires_at IS NULL THEN 0 ELSE 1 END), id DESC",
            (tenant_id, self._db.dump_timestamp(self._clock.now())),
        )
        return [
            SigningSecret(
                secret=row[0],
                created_at=self._db.load_timestamp(row[1]),
                expires_at=None if row[2] is None else self._db.load_timestamp(row[2]),
            )
            for row in rows
        ]

    def current_secret(self, tenant_id: str) -> SigningSecret:
        """The tenant's current signing secret (made if it has none). Raises NotFoundError."""
        secrets_ = self.secrets(tenant_id)
        if secrets_ and secrets_[0].expires_at is None:
            return secrets_[0]
        with self._db.transaction(write=True) as tx:
            self._require_tenant(tx, tenant_id)
            current = self._secret_rows(tx, tenant_id)
            if not current or current[0].expires_at is not None:
                self._insert_secret(tx, tenant_id, self._db.dump_timestamp(self._clock.now()))
                current = self._secret_rows(tx, tenant_id)
        return current[0]

    def secrets(self, tenant_id: str) -> list[SigningSecret]:
        """The valid secrets, current first. Raises NotFoundError for an unknown tenant."""
        with self._db.transaction(write=False) as tx:
            self._require_tenant(tx, tenant_id)
            return self._secret_rows(tx, tenant_id)

    def signing_secrets(self, tenant_id: str) -> list[str]:
        """For the webhook sender: the current secret first, then previous ones in their grace period.

        An unknown tenant gives an empty list.
        """
        with self._db.transaction(write=False) as tx:
            return [row.secret for row in self._secret_rows(tx, tenant_id)]

    def rotate_secret(self, tenant_id: str, *, grace: timedelta | None = None) -> list[SigningSecret]:
        """Make a new current secret; the previous one stays valid for ``grace`` (default: the store's).

        Returns the valid secrets, new one first. Raises NotFoundError for an unknown tenant.
        """
        now = self._clock.now()
        expires = self._db.dump_timestamp(now + (self._grace if grace is None else grace))
        with self._db.transaction(write=True) as tx:
            self._require_tenant(tx, tenant_id)
            tx.execute(
                f"UPDATE {self._secrets} SET expires_at = ? WHERE tenant_id = ? AND expires_at IS NULL",
                (expires, tenant_id),
            )
            self._insert_secret(tx, tenant_id, self._db.dump_timestamp(now))
            return self._secret_rows(tx, tenant_id)

    def _require_tenant(self, tx: Transaction, tenant_id: str) -> None:
        if not tx.query(f"SELECT 1 FROM {self._tenants} WHERE tenant_id = ?", (tenant_id,)):
            raise NotFoundError(f"No tenant with id {tenant_id!r}.")
