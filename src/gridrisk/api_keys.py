"""API keys: generate, hash (only the hash is stored), and resolve a presented key to its holder."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import psycopg

from gridrisk.vocabulary import ROLES

KEY_PREFIX = "grk"

# What each role may do; a route names the capability it needs, not a list of roles.
CAPABILITIES: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "write", "admin", "field"}),
    "operator": frozenset({"read", "write", "field"}),
    "worker": frozenset({"read", "field"}),
    "viewer": frozenset({"read"}),
}


@dataclass(frozen=True)
class Principal:
    """The holder of a verified key (or the anonymous public reader)."""

    key_id: int | None
    name: str
    role: str

    def can(self, capability: str) -> bool:
        return capability in CAPABILITIES.get(self.role, frozenset())


ANONYMOUS = Principal(key_id=None, name="anonymous", role="anonymous")


def hash_key(key: str) -> str:
    """SHA-256 of the key: keys carry 190 random bits, so a fast hash is the right tool."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """Return (full key, public prefix); the full key is shown once and never stored."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}", prefix


def split_prefix(key: str) -> str | None:
    """The public prefix of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8:
        return None
    return parts[1]


def create_key(conn: psycopg.Connection, name: str, role: str) -> tuple[int, str]:
    """Store a new key for NAME with ROLE; return (id, the full key to hand over once)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    key, prefix = new_key()
    row = conn.execute(
        "INSERT INTO api_keys (name, role, prefix, key_hash) VALUES (%s, %s, %s, %s) RETURNING id",
        (name, role, prefix, hash_key(key)),
    ).fetchone()
    assert row is not None
    return int(row[0]), key


def verify(stored_hash: str, presented: str) -> bool:
    """Constant-time comparison of the presented key's hash with the stored one."""
    return hmac.compare_digest(stored_hash, hash_key(presented))
