"""Turn a broker library's connection failure into one clear, secret-free error."""

from __future__ import annotations

import re
from urllib.parse import unquote

from drivers.base.contract import DriverInfo
from drivers.base.errors import BrokerUnreachableError
from drivers.base.spec import BrokerSpec
from drivers.base.urls import MASK, host_port, mask_url, secrets_of, unencoded_userinfo


def scrub(text: str, url: str | None) -> str:
    """Remove the URL's password from text a library produced (some echo the URL, or a part of it, back)."""
    if not url:
        return text
    text = text.replace(url, mask_url(url))
    for secret in sorted(secrets_of(url), key=len, reverse=True):  # the whole userinfo first, then the password
        text = text.replace(secret, MASK).replace(unquote(secret), MASK)
        if unencoded_userinfo(url):  # a library that split it at '#', '?' or '/' may show either side
            for piece in re.split(r"[/?#:]", secret):
                if len(piece) >= 3:
                    text = text.replace(piece, MASK)
    return text


def unreachable(spec: BrokerSpec, error: BaseException, info: DriverInfo) -> BrokerUnreachableError:
    """The error for a server of ``info``'s driver that did not answer: where (host:port, never the password),
    why, and how to start a local one."""
    where = host_port(spec.url or "", info.default_port)
    reason = scrub(str(error) or type(error).__name__, spec.url).rstrip(". ")
    return BrokerUnreachableError(
        f"Cannot reach the {spec.driver} server of queue connection '{spec.name}' at {where} "
        f"(url {spec.display_url}): {reason}. Check the URL and that the server is running"
        f" (for a local one: `{info.start_command(where)}`)."
    )
