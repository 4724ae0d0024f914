"""Checks of the URLs the registry sends people or secrets to: https, except on loopback."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (plain http is acceptable there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """What is wrong with `url` as an endpoint to trust, or None: it must be an absolute http(s)
    URL without credentials or fragment, and https unless the host is loopback."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an absolute http(s) URL"
    if parts.username or parts.password or parts.fragment:
        return "must have no credentials or fragment"
    if parts.scheme != "https" and not is_loopback(host):
        return "must be https (plain http only on a loopback address)"
    return None


def origin(url: str) -> str:
    """`scheme://host[:port]` of an absolute URL (for a Content-Security-Policy source)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
