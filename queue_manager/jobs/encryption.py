"""Encrypted jobs (Laravel's ``ShouldBeEncrypted``): ``encrypted = True`` seals a job class's payload with the
app's key, so the broker and the failed-jobs store never hold its plain arguments.

The key is ``APP_KEY`` (fastapi-startkit's, Laravel's name; ``base64:...`` or any text), and ``APP_PREVIOUS_KEYS``
(comma-separated) are still accepted for reading, so a key can be rotated while jobs wait. The cipher is
``cryptography``'s Fernet (AES-128-CBC with HMAC-SHA256), each key derived from the app key with SHA-256; it needs
``pip install 'fastapi-startkit-queue[encryption]'``. A worker without the key, or with another, cannot open the
job: it fails for good with that reason (recorded as failed, never retried, never run with garbage).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from queue_manager.errors import JobPayloadError, MissingExtraError

SEALED = "__encrypted__"  # the payload's only key when it is sealed


def sealed(state: dict[str, Any]) -> dict[str, Any]:
    """The payload as one sealed value, with the current key."""
    return {SEALED: _cipher().encrypt(json.dumps(state, separators=(",", ":")).encode()).decode()}


def opened(state: dict[str, Any], where: str) -> dict[str, Any]:
    """The sealed payload opened with the current key or a previous one; JobPayloadError saying why not."""
    token = state.get(SEALED)
    if not isinstance(token, str):
        raise JobPayloadError(f"{where} is an encrypted job, but this payload is not sealed (was it sent in plain?).")
    from cryptography.fernet import InvalidToken

    try:
        return dict(json.loads(_cipher().decrypt(token.encode())))
    except InvalidToken:
        raise JobPayloadError(
            f"{where}: the job's payload cannot be opened with APP_KEY (nor APP_PREVIOUS_KEYS): it was sealed with "
            "another key. Give this worker the key it was sent with (add the old one to APP_PREVIOUS_KEYS when "
            "rotating)."
        ) from None


def _cipher() -> Any:
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ModuleNotFoundError as error:
        raise MissingExtraError(
            "Encrypted jobs need the 'cryptography' library, which is not installed. Install it with: "
            "pip install 'fastapi-startkit-queue[encryption]'"
        ) from error
    current = os.environ.get("APP_KEY", "")
    if not current.strip():
        raise JobPayloadError(
            "Encrypted jobs need the app's key: set APP_KEY (the same on every process that sends or runs them)."
        )
    previous = [key for key in os.environ.get("APP_PREVIOUS_KEYS", "").split(",") if key.strip()]
    return MultiFernet([Fernet(_fernet_key(key)) for key in [current, *previous]])


def _fernet_key(app_key: str) -> bytes:
    """A Fernet key from an app key of any form (``base64:...`` as Laravel writes it, or plain text)."""
    raw = app_key.strip()
    material = base64.b64decode(raw[7:]) if raw.startswith("base64:") else raw.encode()
    return base64.urlsafe_b64encode(hashlib.sha256(material).digest())
