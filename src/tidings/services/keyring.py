"""The server's keys, and what is made with them: TOTP secrets and webhook signing
secrets sealed at rest (AES-256-GCM, bound to their user or webhook) and the audit
log's signed head (HMAC-SHA256).

Key material comes from the settings (`secret_keys`, newest first) or, when that is
empty, from a key file in the data directory (one key a line, newest first; generated
with mode 0600 at first need: app/keys.py). Every purpose gets its own key, derived
with HKDF-SHA256 from the material, so one key's use says nothing about another's. A
key's id (16 hex digits, also derived) is stored beside what it sealed or signed: the
first key seals and signs, every key of the list opens and checks, and a stored id that
no key has is reported by name (docs/security.md, "Server keys")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tidings.store.ports import AuditHead

KEY_MIN_CHARS = 32
NONCE_BYTES = 12

# Loads the key material: the argument says whether it may make a key (a key file).
KeyLoader = Callable[[bool], list[str]]


class UnknownKey(Exception):
    """Something was sealed or signed with a key that this server does not hold."""

    def __init__(self, key_id: str, what: str) -> None:
        super().__init__(
            f"{what} is under key {key_id}, which is not among the server's keys "
            "(secret_keys, or the key file): see docs/security.md, Server keys"
        )
        self.key_id = key_id


class NoKey(Exception):
    """No key material at all, and none may be made here."""


def _derive(material: bytes, purpose: str, length: int = 32) -> bytes:
    info = f"tidings {purpose} v1".encode()
    return HKDF(algorithm=SHA256(), length=length, salt=None, info=info).derive(material)


@dataclass(frozen=True, slots=True)
class _Key:
    id: str
    totp: AESGCM
    audit: bytes
    integration: AESGCM  # integrations' signing secrets (slash commands)
    links: bytes  # signed links (a slash command's response URL)
    webhook: AESGCM

    @classmethod
    def of(cls, material: str) -> _Key:
        raw = material.strip().encode()
        if len(raw) < KEY_MIN_CHARS:
            raise ValueError(f"a secret key has at least {KEY_MIN_CHARS} characters")
        return cls(
            id=_derive(raw, "key id", 8).hex(),
            totp=AESGCM(_derive(raw, "totp secret")),
            audit=_derive(raw, "audit head"),
            integration=AESGCM(_derive(raw, "integration secret")),
            links=_derive(raw, "signed links"),
            webhook=AESGCM(_derive(raw, "webhook secret")),
        )


def _head_message(seq: int, head_hash: str) -> bytes:
    return f"tidings audit head\n{seq}\n{head_hash}".encode()


def new_key() -> str:
    """Fresh key material: 256 random bits, base64url (43 characters)."""
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


class Keyring:
    """The server's keys, the first one current. Given `keys`, those; else `load` is
    asked for them when first needed (and may make one when something must be sealed
    or signed)."""

    def __init__(self, keys: Sequence[str] = (), *, load: KeyLoader | None = None) -> None:
        self._load = load
        self._keys = [_Key.of(k) for k in keys]

    def _all(self, create: bool) -> list[_Key]:
        if not self._keys and self._load is not None:
            self._keys = [_Key.of(k) for k in self._load(create)]
        return self._keys

    @property
    def ids(self) -> list[str]:
        """The ids of the keys held, current first (none made to answer)."""
        return [k.id for k in self._all(False)]

    def current(self) -> _Key:
        keys = self._all(True)
        if not keys:
            raise NoKey("no secret key: set secret_keys (see docs/security.md, Server keys)")
        return keys[0]

    def _by_id(self, key_id: str, what: str) -> _Key:
        for key in self._all(False):
            if key.id == key_id:
                return key
        raise UnknownKey(key_id, what)

    # --- TOTP secrets -----------------------------------------------------------------
    def seal_totp(self, user_id: str, secret: str) -> tuple[str, str]:
        """(key id, sealed secret): AES-GCM under the current key, the user id as
        associated data (a sealed secret copied to another user's row does not open)."""
        key = self.current()
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.totp.encrypt(nonce, secret.encode(), _totp_context(user_id))
        return key.id, base64.urlsafe_b64encode(nonce + sealed).decode()

    def open_totp(self, user_id: str, key_id: str | None, stored: str) -> str:
        """The secret of a stored second factor (`key_id` None: stored before secrets
        were sealed, as is)."""
        if key_id is None:
            return stored
        key = self._by_id(key_id, "a TOTP secret")
        raw = base64.urlsafe_b64decode(stored.encode())
        try:
            plain = key.totp.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _totp_context(user_id))
        except InvalidTag as exc:
            raise UnknownKey(key_id, "a TOTP secret that does not open (altered?)") from exc
        return plain.decode()

    # --- integrations' signing secrets -------------------------------------------------
    def seal_secret(self, owner: str, secret: str) -> tuple[str, str]:
        """(key id, sealed): a secret the server must be able to read back (it signs
        with it), AES-GCM under the current key, bound to `owner` (e.g. a command id)."""
        key = self.current()
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.integration.encrypt(nonce, secret.encode(), _integration_context(owner))
        return key.id, base64.urlsafe_b64encode(nonce + sealed).decode()

    def open_secret(self, owner: str, key_id: str, stored: str) -> str:
        key = self._by_id(key_id, "an integration secret")
        raw = base64.urlsafe_b64decode(stored.encode())
        try:
            plain = key.integration.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _integration_context(owner)
            )
        except InvalidTag as exc:
            raise UnknownKey(key_id, "an integration secret that does not open") from exc
        return plain.decode()

    # --- signed links ---------------------------------------------------------------------
    def sign_link(self, purpose: str, subject: str) -> str:
        """A URL-safe signature of `subject` for `purpose`, with the current key."""
        key = self.current()
        mac = hmac.new(key.links, _link_message(purpose, subject), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def link_is_signed(self, purpose: str, subject: str, signature: str) -> bool:
        """Whether `signature` is that of `subject` for `purpose` under any key held."""
        for key in self._all(False):
            mac = hmac.new(key.links, _link_message(purpose, subject), hashlib.sha256).digest()
            expected = base64.urlsafe_b64encode(mac).rstrip(b"=")
            # as bytes: compare_digest refuses a str that is not ASCII (any URL may come)
            if hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass")):
                return True
        return False

    # --- webhook signing secrets -----------------------------------------------------
    def seal_webhook(self, webhook_id: str, secret: str) -> tuple[str, str]:
        """(key id, sealed secret), as `seal_totp`, bound to the webhook's id: a webhook
        signs its deliveries with it, so it is kept to be opened, never only hashed."""
        key = self.current()
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.webhook.encrypt(nonce, secret.encode(), _webhook_context(webhook_id))
        return key.id, base64.urlsafe_b64encode(nonce + sealed).decode()

    def open_webhook(self, webhook_id: str, key_id: str, stored: str) -> str:
        key = self._by_id(key_id, "a webhook secret")
        raw = base64.urlsafe_b64decode(stored.encode())
        context = _webhook_context(webhook_id)
        try:
            plain = key.webhook.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
        except InvalidTag as exc:
            raise UnknownKey(key_id, "a webhook secret that does not open (altered?)") from exc
        return plain.decode()

    # --- the audit log's head -----------------------------------------------------------
    def sign_head(self, seq: int, head_hash: str) -> AuditHead:
        key = self.current()
        mac = hmac.new(key.audit, _head_message(seq, head_hash), hashlib.sha256).hexdigest()
        return AuditHead(seq, head_hash, key.id, mac)

    def head_is_signed(self, head: AuditHead) -> bool:
        """Whether `head` carries a valid signature (UnknownKey: by a key not held)."""
        key = self._by_id(head.key_id, "the audit log's signed head")
        mac = hmac.new(key.audit, _head_message(head.seq, head.hash), hashlib.sha256)
        return hmac.compare_digest(mac.hexdigest(), head.mac)


def _integration_context(owner: str) -> bytes:
    return f"tidings integration secret\n{owner}".encode()


def _link_message(purpose: str, subject: str) -> bytes:
    return f"tidings link\n{purpose}\n{subject}".encode()


def _totp_context(user_id: str) -> bytes:
    return f"tidings totp secret\n{user_id}".encode()


def _webhook_context(webhook_id: str) -> bytes:
    return f"tidings webhook secret\n{webhook_id}".encode()
