"""Agencies' API keys for the gateway: stored hashed, with the topics each agency may write.

A key looks like ``ioc_<key id>_<secret>``: the key id (8 hex digits) finds the entry, the
SHA-256 of the whole key is compared in constant time. Only the hash is stored, so the keys
file cannot be used to send data; a plain (unsalted, fast) hash is enough because the secret is
32 random bytes, not a password a person chose. The key is shown once, when it is created.

The keys file (``IOC_GATEWAY_KEYS_FILE``, default ``$IOC_DATA_DIR/gateway/keys.json``, mode
0600) is JSON::

    {"version": 1, "keys": [
      {"key_id": "3f9a0c1d", "agency": "SGTVT-QNA", "name": "traffic centre",
       "topics": ["ioc.traffic.*"], "sources": ["SGTVT-QNA"],
       "rate_per_s": 50.0, "burst": 500, "hash": "sha256:…",
       "created_at": "2026-11-30T02:00:00Z", "revoked_at": null}]}

- ``topics``: contract topic names or shell-style patterns (``ioc.traffic.*``) the key may
  write; derived topics (KPIs, alerts, dead letters) are never writable. The same list decides
  which dead letters the agency may read (``GET /v1/dead-letters/{topic}``).
- ``sources``: the values the events' ``source`` field may take (default: the agency code);
  an event whose ``source`` is missing gets the first one.
- ``rate_per_s`` / ``burst``: the agency's token bucket (events per second, bucket size);
  all keys of one agency share one bucket, sized by the key used.

``ioc gateway keys add|list|revoke`` edits the file; a running gateway re-reads it when it
changes (revocation takes effect within a second, no restart).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KEY_PREFIX = "ioc_"


class KeyStoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class AgencyKey:
    key_id: str
    agency: str
    topics: tuple[str, ...]
    hash: str
    name: str = ""
    sources: tuple[str, ...] = ()
    rate_per_s: float = 50.0
    burst: int = 500
    created_at: str = ""
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def allowed_sources(self) -> tuple[str, ...]:
        return self.sources or (self.agency,)

    def may_write(self, topic: str) -> bool:
        return any(fnmatch.fnmatchcase(topic, pattern) for pattern in self.topics)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["topics"] = list(self.topics)
        d["sources"] = list(self.sources)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AgencyKey:
        return cls(key_id=str(d["key_id"]), agency=str(d["agency"]),
                   topics=tuple(d.get("topics") or ()), hash=str(d["hash"]),
                   name=str(d.get("name") or ""), sources=tuple(d.get("sources") or ()),
                   rate_per_s=float(d.get("rate_per_s", 50.0)), burst=int(d.get("burst", 500)),
                   created_at=str(d.get("created_at") or ""), revoked_at=d.get("revoked_at"))


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class KeyStore:
    """The keys file, re-read when it changes on disk."""

    path: Path
    _keys: dict[str, AgencyKey] = field(default_factory=dict)
    _stamp: tuple[int, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- reading -------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._keys, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            keys = {k.key_id: k for k in map(AgencyKey.from_json, data.get("keys", []))}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"cannot read the gateway keys file {self.path}: {exc}") from None
        self._keys, self._stamp = keys, stamp

    def keys(self) -> list[AgencyKey]:
        with self._lock:
            self._load()
            return sorted(self._keys.values(), key=lambda k: (k.agency, k.created_at, k.key_id))

    def authenticate(self, presented: str) -> AgencyKey | None:
        """The active key entry for a presented key, or None."""
        if not presented.startswith(KEY_PREFIX):
            return None
        key_id = presented[len(KEY_PREFIX):].split("_", 1)[0]
        with self._lock:
            self._load()
            entry = self._keys.get(key_id)
        if entry is None or not entry.active:
            return None
        return entry if hmac.compare_digest(entry.hash, hash_key(presented)) else None

    # -- editing (the CLI) ---------------------------------------------------------------------
    def _save(self, keys: list[AgencyKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        data = {"version": 1, "keys": [k.to_json() for k in keys]}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
        os.replace(tmp, self.path)

    def add(self, agency: str, topics: list[str], *, name: str = "",
            sources: list[str] | None = None, rate_per_s: float = 50.0,
            burst: int = 500) -> tuple[str, AgencyKey]:
        """Create a key; returns (the key in clear — shown once —, its entry)."""
        if not agency.strip():
            raise KeyStoreError("the agency code must not be empty")
        if not topics:
            raise KeyStoreError("give at least one topic (or pattern) the agency may write")
        if rate_per_s <= 0 or burst < 1:
            raise KeyStoreError("rate must be > 0 and burst >= 1")
        with self._lock:
            self._load()
            key_id = secrets.token_hex(4)
            while key_id in self._keys:
                key_id = secrets.token_hex(4)
            clear = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            entry = AgencyKey(key_id=key_id, agency=agency.strip(), topics=tuple(topics),
                              hash=hash_key(clear), name=name, sources=tuple(sources or ()),
                              rate_per_s=rate_per_s, burst=burst, created_at=_now())
            self._save([*self._keys.values(), entry])
            self._stamp = None
        return clear, entry

    def revoke(self, key_id: str) -> AgencyKey:
        with self._lock:
            self._load()
            entry = self._keys.get(key_id)
            if entry is None:
                raise KeyStoreError(f"no key with id {key_id!r}")
            if entry.active:
                entry = replace(entry, revoked_at=_now())
                self._save([entry if k.key_id == key_id else k for k in self._keys.values()])
                self._stamp = None
        return entry
