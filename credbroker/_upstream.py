"""Classify exchange and LLM failures into credbroker's ``UpstreamError`` tree.

Only the failures credbroker must act on or that callers must tell apart are translated: authentication,
rate limits, IP bans, quota and clock skew, and network failures. An exchange's business answers
(``ccxt.InsufficientFunds``, ``ccxt.InvalidOrder``...) pass through unchanged: trading code already handles
them by ccxt class. The original exception is always chained as ``__cause__``.
"""

from __future__ import annotations

import re
from typing import Any

from credbroker._redact import scrubber
from credbroker.exceptions import (
    ClockSkew,
    IPBanned,
    QuotaExhausted,
    RateLimited,
    UpstreamAuthError,
    UpstreamError,
    UpstreamUnavailable,
)

__all__ = ["classify"]

_STATUS_RE = re.compile(r"\b(418|429)\b")
# Exchange error codes that mean "these credentials are not valid", whatever ccxt class carries them. ccxt's
# binance raises DDoSProtection for -2015 once a client has authenticated before (it guesses a temporary ban);
# for a broker that just rotated the key, that answer means the key was revoked.
_AUTH_CODES = re.compile(r'"code"\s*:\s*"?(-2014|-2015|-1022|400003|400004|400005|40006|40009|40012)\b')


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    try:
        items = {str(k).lower(): v for k, v in dict(headers).items()}
    except (TypeError, ValueError):
        return None
    if "retry-after-ms" in items:
        try:
            return float(items["retry-after-ms"]) / 1000.0
        except (TypeError, ValueError):
            pass
    try:
        return float(items["retry-after"]) if "retry-after" in items else None
    except (TypeError, ValueError):
        return None


_QUERY = re.compile(r"(https?://[^\s?\"']+)\?[^\s\"']*")


def _msg(exc: BaseException) -> str:
    # Exchanges sometimes echo a request back; scrub anything credbroker knows is a secret. ccxt puts the full
    # URL in its messages, and a signed URL's query carries the request signature: keep only the path.
    text = _QUERY.sub(r"\1?…", scrubber.scrub(str(exc)))
    return text[:500]


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's class and first words ("NameResolutionError", "ConnectionRefusedError")."""
    seen = 0
    while (exc.__cause__ or exc.__context__) is not None and seen < 8:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    if seen == 0:
        return ""
    first = _QUERY.sub(r"\1?…", scrubber.scrub(str(exc)).split("\n")[0])
    return f" (cause: {type(exc).__name__}: {first[:160]})"


def classify(exc: BaseException, service: str, client: Any = None) -> UpstreamError | None:
    """Return the credbroker error for ``exc``, or None when it should propagate unchanged."""
    mod = type(exc).__module__
    if mod.startswith("ccxt"):
        return _classify_ccxt(exc, service, client)
    if mod.startswith("openai"):
        return _classify_openai(exc, service)
    return None


def _classify_ccxt(exc: BaseException, service: str, client: Any) -> UpstreamError | None:
    import ccxt

    text = _msg(exc)
    headers = getattr(client, "last_response_headers", None)
    if isinstance(exc, ccxt.InvalidNonce):
        return ClockSkew(
            f"{service}: the exchange rejected the request timestamp (clock skew or recvWindow); sync the "
            f"clock: {text}",
            service=service,
        )
    if isinstance(exc, ccxt.AuthenticationError) or _AUTH_CODES.search(str(exc)):
        return UpstreamAuthError(f"{service}: credentials rejected: {text}", service=service)
    if isinstance(exc, ccxt.DDoSProtection):  # RateLimitExceeded is a subclass
        match = _STATUS_RE.search(text)
        if (match and match.group(1) == "418") or "banned" in text.lower():
            return IPBanned(f"{service}: this IP is banned by the exchange: {text}", service=service, status=418)
        return RateLimited(
            f"{service}: rate limited: {text}",
            service=service,
            status=429,
            retry_after=_retry_after(headers),
        )
    if isinstance(exc, ccxt.NetworkError):
        return UpstreamUnavailable(f"{service}: network failure: {text}{_root_cause(exc)}", service=service)
    return None


def _classify_openai(exc: BaseException, service: str) -> UpstreamError | None:
    import openai

    text = _msg(exc)
    if isinstance(exc, openai.AuthenticationError):
        return UpstreamAuthError(f"{service}: API key rejected (401): {text}", service=service, status=401)
    if isinstance(exc, openai.RateLimitError):
        body = exc.body if isinstance(exc.body, dict) else {}
        err = body.get("error", body) if isinstance(body, dict) else {}
        code = (err.get("code") or err.get("type") or "") if isinstance(err, dict) else ""
        if code == "insufficient_quota":
            return QuotaExhausted(
                f"{service}: quota exhausted (insufficient_quota); check the plan and billing: {text}",
                service=service,
                status=429,
            )
        return RateLimited(
            f"{service}: rate limited (429): {text}",
            service=service,
            status=429,
            retry_after=_retry_after(exc.response.headers if exc.response is not None else None),
        )
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return UpstreamUnavailable(f"{service}: cannot reach the API: {text}", service=service)
    return None
