"""API keys: named, scoped, stored hashed (scrypt + salt) in a JSON file, revocable.

A key is shown once, at creation: `colt_<id>_<secret>`. The file keeps only the
id, the name, the scopes and the scrypt hash of the secret, so a copy of the file
gives no access. The service re-reads the file when it changes (its mtime and
size), so `coltiva keys revoke` takes effect without a restart. A verified key is
remembered by the SHA-256 of the token, so scrypt runs once per key, not per request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import KeyFileError

__all__ = ["DEFAULT_KEYS", "SCOPES", "ApiKey", "KeyFile", "KeyRing", "hash_secret"]

#: events:write posts events and Segment payloads; actions:read reads leads, actions, quarantine,
#: explain and metrics; admin does everything (ticks, the schema, keys are managed on the command line).
SCOPES = ("events:write", "actions:read", "admin")
PREFIX = "colt_"
#: The keys file `coltiva keys` writes and `coltiva serve` uses when it exists and no other is given.
DEFAULT_KEYS = "coltiva-keys.json"
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}


def hash_secret(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, **_SCRYPT).hex()


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    salt: str
    hash: str
    created: str
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes), "salt": self.salt,
                "hash": self.hash, "created": self.created, "revoked": self.revoked}


class KeyFile:
    """The keys file itself: read, create, revoke (the command line's side)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> list[ApiKey]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [ApiKey(id=k["id"], name=k["name"], scopes=tuple(k["scopes"]), salt=k["salt"], hash=k["hash"],
                           created=k["created"], revoked=k.get("revoked")) for k in data["keys"]]
        except (OSError, UnicodeDecodeError) as err:
            raise KeyFileError(f"{self.path}: cannot read the keys file ({err})") from None
        except (ValueError, KeyError, TypeError) as err:
            raise KeyFileError(f"{self.path}: not a Coltiva keys file ({type(err).__name__}: {err})") from None

    def _save(self, keys: list[ApiKey]) -> None:
        text = json.dumps({"keys": [k.to_json() for k in keys]}, indent=2, ensure_ascii=False) + "\n"
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)  # atomic: the service never reads half a file
        except OSError as err:
            raise KeyFileError(f"{self.path}: cannot write the keys file ({err.strerror})") from None

    def create(self, name: str, scopes: tuple[str, ...]) -> tuple[ApiKey, str]:
        """A new key and its token (shown once: only its hash is kept)."""
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise KeyFileError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(scopes) or 'none'})")
        keys = self.load()
        if any(k.name == name and k.active for k in keys):
            raise KeyFileError(f"a key named {name!r} exists already: revoke it first or pick another name")
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(24)
        salt = secrets.token_bytes(16)
        key = ApiKey(id=key_id, name=name, scopes=tuple(dict.fromkeys(scopes)), salt=salt.hex(),
                     hash=hash_secret(secret, salt), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self._save([*keys, key])
        return key, f"{PREFIX}{key_id}_{secret}"

    def revoke(self, name_or_id: str) -> ApiKey:
        keys = self.load()
        hits = [k for k in keys if k.active and name_or_id in (k.name, k.id)]
        if not hits:
            raise KeyFileError(f"no active key named {name_or_id!r} in {self.path}")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._save([replace(k, revoked=stamp) if k in hits else k for k in keys])
        return hits[0]


class KeyRing:
    """The service's view of the keys file: verifies tokens, re-reads the file when it changes."""

    def __init__(self, path: str | Path | None):
        self.file = KeyFile(path) if path else None
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._keys: dict[str, ApiKey] = {}
        self._verified: dict[bytes, str] = {}  # sha256(token) -> key id
        self.refresh()

    def refresh(self) -> None:
        if self.file is None:
            return
        try:
            st = self.file.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp == self._stamp and self._stamp is not None:
                return
            keys = self.file.load() if stamp is not None else []
            self._keys = {k.id: k for k in keys if k.active}
            self._verified = {h: i for h, i in self._verified.items() if i in self._keys}
            self._stamp = stamp

    @property
    def configured(self) -> bool:
        """True when a keys file is in use: then every endpoint but /health needs a key.

        Revoking the last key locks the service; it never falls back to open access.
        """
        return self.file is not None

    @property
    def active(self) -> int:
        self.refresh()
        return len(self._keys)

    def known(self, token: str) -> ApiKey | None:
        """The key of a token verified before and still active; None if it needs `verify` (scrypt)."""
        self.refresh()
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        with self._lock:
            known = self._verified.get(digest)
            if known is not None and known in self._keys:
                return self._keys[known]
        return None

    def verify(self, token: str) -> ApiKey | None:
        key = self.known(token)
        if key is not None:
            return key
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        if not token.startswith(PREFIX) or token.count("_") < 2:
            return None
        key_id, _, secret = token[len(PREFIX):].partition("_")
        key = self._keys.get(key_id)
        if key is None:
            return None
        if not hmac.compare_digest(hash_secret(secret, bytes.fromhex(key.salt)), key.hash):
            return None
        with self._lock:
            self._verified[digest] = key.id
        return key
