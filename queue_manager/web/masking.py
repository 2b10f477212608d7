"""The connections' passwords, to scrub from anything the web routes show: a second line of defence behind our
own error messages, which are written without them."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

MASK = "***"


def passwords(manager: QueueManager) -> list[str]:
    """Every connection's URL password (and user-only token), raw and percent-encoded: never to be shown."""
    found: set[str] = set()
    for settings in manager.settings.connections.values():
        url = settings.url_value or ""
        try:
            parts = urlsplit(url)
            userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        except ValueError:
            continue
        user, colon, password = userinfo.partition(":")
        secret = password if colon else user
        if len(secret) >= 3:
            found.update({secret, unquote(secret)})
    return sorted(found, key=len, reverse=True)


def scrub(text: str, hidden: list[str]) -> str:
    for secret in hidden:
        text = text.replace(secret, MASK)
    return text
