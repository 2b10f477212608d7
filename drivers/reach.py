"""Turn a broker library's connection failure into one clear, secret-free error."""

from __future__ import annotations

from drivers.errors import BrokerUnreachableError
from drivers.registry import driver_info
from drivers.spec import BrokerSpec
from drivers.urls import MASK, host_port, mask_url


def scrub(text: str, url: str | None) -> str:
    """Remove the URL's password from text a library produced (some echo the URL back)."""
    if not url:
        return text
    from urllib.parse import unquote, urlsplit

    text = text.replace(url, mask_url(url))
    try:
        parts = urlsplit(url)
        secrets = [s for s in (parts.password, parts.username if parts.password is None else None) if s]
    except ValueError:
        return text
    for secret in secrets:
        text = text.replace(secret, MASK).replace(unquote(secret), MASK)
    return text


def unreachable(spec: BrokerSpec, error: BaseException) -> BrokerUnreachableError:
    info = driver_info(spec.driver)
    where = host_port(spec.url or "", info.default_port)
    reason = scrub(str(error) or type(error).__name__, spec.url)
    return BrokerUnreachableError(
        f"Cannot reach the {spec.driver} server of queue connection '{spec.name}' at {where} "
        f"(url {spec.display_url}): {reason}. Check the URL and that the server is running"
        f" (for a local one: `{info.start_hint}`)."
    )
