"""Turn a broker library's connection failure into one clear, secret-free error."""

from __future__ import annotations

import re
from urllib.parse import unquote

from drivers.base.contract import DriverInfo
from drivers.base.errors import BrokerAuthenticationError, BrokerUnreachableError
from drivers.base.spec import BrokerSpec
from drivers.base.urls import MASK, credentials_of, host_port, mask_url, secrets_of, unencoded_userinfo


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


class NoAnswer(TimeoutError):
    """The request went out and the server did not answer in time (a network partition, a stuck server): a job
    being sent may or may not have been stored."""


def unreachable(spec: BrokerSpec, error: BaseException, info: DriverInfo) -> BrokerUnreachableError:
    """The error for a server of ``info``'s driver that did not answer: where (host:port, never the password),
    why, and how to start a local one."""
    where, reason = _where_and_why(spec, error, info)
    found = BrokerUnreachableError(
        f"Cannot reach the {spec.driver} server of queue connection '{spec.name}' at {where} "
        f"(url {spec.display_url}): {reason}. Check the URL and that the server is running"
        f" (for a local one: `{info.start_command(where)}`)."
    )
    found.maybe_sent = isinstance(error, NoAnswer)
    return found


def refused(spec: BrokerSpec, error: BaseException, info: DriverInfo) -> BrokerAuthenticationError:
    """The error for a server of ``info``'s driver that refused the connection's credentials: which user, where,
    the server's reason, and where to fix them (never the password)."""
    where, reason = _where_and_why(spec, error, info)
    user, password = credentials_of(spec.url or "")
    if user is not None:
        what = f"refused the credentials of user '{user}'"
    elif password is not None:
        what = "refused the password (the URL names no user)"
    else:
        what = "requires credentials, and the URL gives none"
    variable = f" (or {info.url_variables[0]})" if info.url_variables else ""
    return BrokerAuthenticationError(
        f"The {spec.driver} server of queue connection '{spec.name}' at {where} {what} (url {spec.display_url}): "
        f"{reason}. Check the user and password in {spec.setting('url')}{variable}, percent-encoded "
        "(urllib.parse.quote(password, safe='')); trying again will not help."
    )


def _where_and_why(spec: BrokerSpec, error: BaseException, info: DriverInfo) -> tuple[str, str]:
    """``host:port`` of the connection's servers and the library's reason, both without the password."""
    reason = scrub(str(error) or type(error).__name__, spec.url).rstrip(". ")
    return host_port(spec.url or "", info.default_port), reason
