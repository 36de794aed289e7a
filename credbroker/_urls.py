"""URL helpers shared by the exchange client builders."""

from __future__ import annotations

import re

__all__ = ["rebase_urls"]

# scheme://authority, where the authority may still hold a ccxt "{hostname}" placeholder.
_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")


def rebase_urls(urls: object, base: str) -> object:
    """Return a deep copy of a ccxt ``exchange.urls['api']`` structure pointed at ``base``.

    Every URL string ``scheme://host[:port]/path`` becomes ``base.rstrip('/') + '/path'``;
    the host part may be a ccxt placeholder such as ``https://api.{hostname}``. Nested dicts
    and lists are copied recursively; strings that are not absolute URLs and other values
    are returned unchanged. This is how the ``api_base`` config key points a ccxt client at
    a testnet, a proxy or a local test endpoint.
    """
    root = base.rstrip("/")
    if isinstance(urls, dict):
        return {key: rebase_urls(value, base) for key, value in urls.items()}
    if isinstance(urls, list):
        return [rebase_urls(value, base) for value in urls]
    if isinstance(urls, tuple):
        return tuple(rebase_urls(value, base) for value in urls)
    if isinstance(urls, str):
        match = _ORIGIN.match(urls)
        if match is not None:
            return root + urls[match.end() :]
    return urls
