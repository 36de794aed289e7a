"""Local stand-ins for the Binance, KuCoin, Bitget and OpenAI HTTP APIs.

Each endpoint is a small threaded HTTP server on ``127.0.0.1`` that checks requests
the way the real service does according to its *published* API documentation, and
answers rejections with the real service's HTTP status and JSON error body, so that
ccxt's and openai's own error mapping classify them exactly as in production.

The verification rules were written from the services' public docs, deliberately not
from ccxt's signing code: a signing change in ccxt shows up here as a rejection.

Common API (all endpoints)::

    with BinanceEndpoint() as ep:            # or ep.start() / ep.stop()
        ep.allow("key-id", "secret")         # an operator creating a key
        exchange.urls["api"] = rebase_urls(exchange.urls["api"], ep.url)
        exchange.fetch_balance()
        ep.revoke("key-id")                  # the key stops working at once
        assert ep.stats.rejected_mixed == 0

Every endpoint remembers every key it was ever given. A request whose fields come from
two different keys (the key id of one and the signature, or passphrase, made with
another) is answered with the service's authentication error *and* counted in
``stats.rejected_mixed``: that is the signature of a client that mixed the fields of two
rotation versions of a credential.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Literal, Self
from urllib.parse import parse_qsl

__all__ = [
    "BinanceEndpoint",
    "BitgetEndpoint",
    "EndpointStats",
    "KucoinEndpoint",
    "OpenAIEndpoint",
    "mask_key",
]

Json = Any
# Why a request was turned away; selects the counter in EndpointStats.
RejectKind = Literal["auth", "timestamp", "throttled", "other"]


@dataclass(frozen=True)
class EndpointStats:
    """A consistent snapshot of an endpoint's counters.

    ``accepted`` counts requests that passed authentication; public (unauthenticated)
    market-data requests are counted in ``public`` only. ``rejected_auth`` counts every
    request turned away for its credentials (missing, unknown, revoked, bad signature,
    bad passphrase), *including* the mixed-field ones, which are also counted in
    ``rejected_mixed``. ``rejected_timestamp`` counts authentic requests turned away for
    their timestamp (outside the service's window); ``throttled`` counts forced failures
    (OpenAI); ``rejected_other`` counts malformed requests, unknown paths and 500s.
    """

    accepted: int = 0
    rejected_auth: int = 0
    rejected_timestamp: int = 0
    rejected_mixed: int = 0
    throttled: int = 0
    rejected_other: int = 0
    public: int = 0
    by_path: Mapping[str, int] = field(default_factory=dict)
    """Requests per ``"METHOD /path"``, whatever their outcome."""
    by_key: Mapping[str, int] = field(default_factory=dict)
    """Accepted requests per API key id (OpenAI: per ``mask_key(api_key)``, keys being secrets)."""

    @property
    def total(self) -> int:
        """Every request the endpoint answered."""
        return sum(self.by_path.values())


@dataclass(frozen=True)
class _Key:
    api_key: str
    secret: str = field(repr=False)
    passphrase: str | None = field(repr=False)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: str
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Json
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Rejection:
    reply: _Reply
    kind: RejectKind
    mixed: bool = False


_Handler = Callable[[Any, _Request, _Key | None], _Reply]
# "none": public market data; "key": a valid key id is enough (a signature, if sent, must
# still verify); "signed": full request signature required.
AuthLevel = Literal["none", "key", "signed"]


@dataclass(frozen=True)
class _Route:
    handler: _Handler
    auth: AuthLevel


def _hmac_sha256(secret: str, message: str | bytes) -> bytes:
    data = message.encode("utf-8") if isinstance(message, str) else message
    return hmac.new(secret.encode("utf-8"), data, hashlib.sha256).digest()


def _b64_hmac(secret: str, message: str | bytes) -> str:
    return base64.b64encode(_hmac_sha256(secret, message)).decode("ascii")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def mask_key(api_key: str) -> str:
    """Mask a key id for error messages: only the last 4 characters survive.

    Short keys are masked completely, since 4 characters would be most of them.
    """
    if len(api_key) < 12:
        return "*" * len(api_key)
    return "*" * (len(api_key) - 4) + api_key[-4:]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Dozens of clients connect at once under load; the default backlog of 5 drops SYNs
    # and costs each dropped client a one-second retransmit.
    request_queue_size = 128

    def __init__(self, endpoint: _Endpoint) -> None:
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.endpoint = endpoint
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response (or stop() cutting them off) is routine here.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def drop_connections(self, timeout: float = 2.0) -> None:
        """Wake every handler thread parked on a keep-alive connection and let it close."""
        with self._connections_lock:
            open_now = list(self._connections)
        for conn in open_now:
            with contextlib.suppress(OSError):  # the peer may already have gone away
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._connections_lock:
                if not self._connections:
                    return
            time.sleep(0.005)


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps client connections alive, as the real APIs do; 32 clients in a loop
    # would otherwise spend most of their time in TCP handshakes.
    protocol_version = "HTTP/1.1"
    # An idle keep-alive connection must not pin a handler thread forever.
    timeout = 30
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus the
        # client's delayed ACK add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        request = _Request(self.command, path, query, self.headers, body)
        reply = self.server.endpoint._dispatch(request)
        payload = json.dumps(reply.body, separators=(",", ":")).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests carry key ids; keep them out of stderr


class _Endpoint:
    """Server lifecycle, key registry, counters and routing shared by all styles."""

    routes: ClassVar[Mapping[tuple[str, str], _Route]] = {}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, _Key] = {}
        # Every key ever allowed, revoked ones included: mixing is judged against all of them.
        self._known: dict[str, _Key] = {}
        self._counts: Counter[str] = Counter()
        self._by_path: Counter[str] = Counter()
        self._by_key: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.clock_offset_ms = 0
        """Added to the wall clock to get the server's clock: simulates clock skew."""
        self.last_error: BaseException | None = None
        """The last exception raised while handling a request (answered with HTTP 500)."""
        self._scripted: list[_Reply] = []

    def reply_next(self, status: int, body: Json, headers: Mapping[str, str] | None = None, *, n: int = 1) -> None:
        """Answer the next ``n`` authenticated requests with this status and body, as the service does when it
        rate-limits (429, with ``Retry-After``) or bans an IP (Binance: 418). Counted as ``throttled``."""
        reply = _Reply(status, body, tuple((headers or {}).items()))
        with self._lock:
            self._scripted.extend([reply] * n)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        server = _Server(self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and the listening socket, join the thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        thread.join()
        server.drop_connections()
        server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- keys ------------------------------------------------------------------------

    def allow(self, api_key: str, secret: str, passphrase: str | None = None) -> None:
        """Register a key as valid from now on, like creating it on the API-key page."""
        key = _Key(api_key, secret, passphrase)
        with self._lock:
            self._active[api_key] = key
            self._known[api_key] = key

    def revoke(self, api_key: str) -> None:
        """Make a key invalid from now on, like deleting it on the API-key page."""
        with self._lock:
            self._active.pop(api_key, None)

    def _lookup(self, api_key: str) -> tuple[_Key | None, _Key | None, list[_Key]]:
        """Return (active key, ever-known key, all known keys) for a key id."""
        with self._lock:
            return self._active.get(api_key), self._known.get(api_key), list(self._known.values())

    # -- stats -----------------------------------------------------------------------

    @property
    def stats(self) -> EndpointStats:
        """A snapshot of the counters; see EndpointStats."""
        with self._lock:
            return EndpointStats(
                accepted=self._counts["accepted"],
                rejected_auth=self._counts["auth"],
                rejected_timestamp=self._counts["timestamp"],
                rejected_mixed=self._counts["mixed"],
                throttled=self._counts["throttled"],
                rejected_other=self._counts["other"],
                public=self._counts["public"],
                by_path=MappingProxyType(dict(self._by_path)),
                by_key=MappingProxyType(dict(self._by_key)),
            )

    def reset_stats(self) -> None:
        """Zero every counter (keys are kept)."""
        with self._lock:
            self._counts.clear()
            self._by_path.clear()
            self._by_key.clear()

    # -- request handling ------------------------------------------------------------

    def server_time_ms(self) -> int:
        """The endpoint's clock: wall clock plus ``clock_offset_ms``."""
        return _now_ms() + self.clock_offset_ms

    def _dispatch(self, request: _Request) -> _Reply:
        with self._lock:
            self._by_path[f"{request.method} {request.path}"] += 1
        try:
            route = self.routes.get((request.method, request.path))
            if route is None:
                self._count("other")
                return self._not_found(request)
            key: _Key | None = None
            if route.auth != "none":
                outcome = self._authenticate(request, route.auth)
                if isinstance(outcome, _Rejection):
                    self._count(outcome.kind, mixed=outcome.mixed)
                    return outcome.reply
                key = outcome
                with self._lock:
                    scripted = self._scripted.pop(0) if self._scripted else None
                if scripted is not None:
                    self._count("throttled")
                    return scripted
                self._count("accepted", api_key=self._key_label(key.api_key))
            else:
                self._count("public")
            return route.handler(self, request, key)
        except Exception as exc:  # a bug here must surface as a 500, not a hung client
            self.last_error = exc
            self._count("other")
            return _Reply(500, {"error": f"{type(self).__name__} failed: {type(exc).__name__}"})

    def _count(self, kind: str, *, mixed: bool = False, api_key: str | None = None) -> None:
        with self._lock:
            self._counts[kind] += 1
            if mixed:
                self._counts["mixed"] += 1
            if api_key is not None:
                self._by_key[api_key] += 1

    def _authenticate(self, request: _Request, level: AuthLevel) -> _Key | _Rejection:
        raise NotImplementedError

    def _key_label(self, api_key: str) -> str:
        """How a key id appears in ``stats.by_key``."""
        return api_key

    def _not_found(self, request: _Request) -> _Reply:
        return _Reply(404, {"code": 404, "msg": f"{request.method} {request.path} is not served"})


def _route(method: str, path: str, auth: AuthLevel = "none") -> Callable[[_Handler], _Handler]:
    """Mark a handler method as serving ``method path``; collected by ``_collect_routes``."""

    def mark(handler: _Handler) -> _Handler:
        setattr(handler, "_endpoint_route", (method, path, auth))  # noqa: B010
        return handler

    return mark


def _collect_routes(cls: type[_Endpoint]) -> type[_Endpoint]:
    routes: dict[tuple[str, str], _Route] = {}
    for klass in reversed(cls.__mro__):
        for attribute in vars(klass).values():
            spec = getattr(attribute, "_endpoint_route", None)
            if spec is not None:
                method, path, auth = spec
                routes[(method, path)] = _Route(attribute, auth)
    cls.routes = MappingProxyType(routes)
    return cls


def _is_mixed(
    claimed: _Key | None,
    every_key: Sequence[_Key],
    signed_by: Callable[[_Key], bool],
    passphrase_of: Callable[[_Key], bool] | None = None,
) -> bool:
    """Whether a request naming ``claimed`` carries the signature or passphrase of another key.

    ``claimed`` is the known (possibly revoked) key for the request's key id; a key id never
    registered cannot be mixed. Only evaluated on the rejection path: it tries every known key.
    """
    if claimed is None:
        return False
    for test in (signed_by, passphrase_of):
        if test is None or test(claimed):
            continue
        if any(other is not claimed and test(other) for other in every_key):
            return True
    return False


# ======================================================================================
# Binance
# ======================================================================================


class _ExchangeEndpoint(_Endpoint):
    """An exchange: balances it reports and the orders it accepted (to prove none was sent twice)."""

    DEFAULT_BALANCES: ClassVar[Mapping[str, str]] = MappingProxyType({"BTC": "0.5", "USDT": "1000"})

    def __init__(self, balances: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.balances: dict[str, str] = dict(balances or self.DEFAULT_BALANCES)
        """Available balance per asset, as the balance endpoints report it."""
        self._orders: list[dict[str, Any]] = []
        self._order_ids = itertools.count(1)

    @property
    def orders(self) -> tuple[dict[str, Any], ...]:
        """Every accepted order (its parameters or JSON body), in arrival order."""
        with self._lock:
            return tuple(dict(order) for order in self._orders)

    def _record_order(self, order: dict[str, Any]) -> int:
        """Remember an accepted order and return its sequence number."""
        with self._lock:
            self._orders.append(order)
            return next(self._order_ids)


@_collect_routes
class BinanceEndpoint(_ExchangeEndpoint):
    """Binance spot REST API (``/api/v3``, ``/sapi/v1``, ``/fapi/v1``, ``/dapi/v1``).

    SIGNED (TRADE / USER_DATA) endpoints, per Binance "Request Security" and "Timing
    security" docs:

    * the API key travels in the ``X-MBX-APIKEY`` header; missing or blank gives
      ``-2014 API-key format invalid.``, unknown or revoked gives
      ``-2015 Invalid API-key, IP, or permissions for action.`` (both HTTP 401);
    * ``signature`` is the hex HMAC-SHA256, under the secret, of *totalParams* = the query
      string concatenated with the request body (no separator), without ``signature``
      itself; hex is compared case-insensitively. A mismatch gives
      ``-1022 Signature for this request is not valid.`` (HTTP 400);
    * ``timestamp`` (ms) is mandatory; the request is processed only if
      ``timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow``, with
      ``recvWindow`` defaulting to 5000 and capped at 60000; otherwise
      ``-1021`` (HTTP 400), which ccxt maps to InvalidNonce, not to an auth error.

    A missing ``timestamp`` or ``signature`` is ``-1102``, a ``recvWindow`` above 60000
    is ``-1131`` (HTTP 400, ccxt BadRequest).

    Credentials are checked before the timestamp, so a correctly signed but stale
    request is a timestamp error and a mis-signed one is an auth error.

    Served - what ccxt's ``load_markets()`` + ``fetch_balance()`` + ``create_order()``
    call with default options: public ``GET /api/v3/ping``, ``/api/v3/time``,
    ``/api/v3/exchangeInfo``, ``/fapi/v1/exchangeInfo``, ``/dapi/v1/exchangeInfo``;
    API-key ``GET /sapi/v1/margin/allPairs``; signed
    ``GET /sapi/v1/capital/config/getall``, ``/sapi/v1/margin/isolated/allPairs``,
    ``/api/v3/account`` and ``POST /api/v3/order``.
    """

    DEFAULT_RECV_WINDOW: ClassVar[int] = 5000
    MAX_RECV_WINDOW: ClassVar[int] = 60000
    # Binance rejects a timestamp this far ahead of its clock regardless of recvWindow.
    MAX_AHEAD_MS: ClassVar[int] = 1000

    DEFAULT_BALANCES: ClassVar[Mapping[str, str]] = MappingProxyType({"BTC": "0.50000000", "USDT": "1000.00000000"})

    @staticmethod
    def _error(status: int, code: int, msg: str) -> _Reply:
        return _Reply(status, {"code": code, "msg": msg})

    @staticmethod
    def _split_signature(params: str) -> tuple[str, str | None]:
        """Remove the ``signature`` parameter from a raw parameter string."""
        kept: list[str] = []
        signature: str | None = None
        for item in params.split("&") if params else []:
            if item.startswith("signature="):
                signature = item[len("signature=") :]
            else:
                kept.append(item)
        return "&".join(kept), signature

    def _authenticate(self, request: _Request, level: AuthLevel) -> _Key | _Rejection:
        api_key = (request.header("X-MBX-APIKEY") or "").strip()
        if not api_key or not api_key.isprintable():
            return _Rejection(self._error(401, -2014, "API-key format invalid."), "auth")
        content_type = request.header("Content-Type") or ""
        body = request.text if request.body and "json" not in content_type else ""
        query, query_signature = self._split_signature(request.query)
        body, body_signature = self._split_signature(body)
        signature = (query_signature or body_signature or "").lower()
        total_params = query + body
        params = dict(parse_qsl(query)) | dict(parse_qsl(body))

        active, known, every_key = self._lookup(api_key)

        def signs(key: _Key) -> bool:
            expected = hmac.new(key.secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()
            return _same(expected, signature)

        def reject(status: int, code: int, msg: str) -> _Rejection:
            mixed = bool(signature) and _is_mixed(known, every_key, signs)
            return _Rejection(self._error(status, code, msg), "auth", mixed)

        if active is None:
            return reject(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if not signature and level == "key":
            return active
        if not signature:
            msg = "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            return reject(400, -1102, msg)
        if not signs(active):
            return reject(400, -1022, "Signature for this request is not valid.")
        return self._check_timing(params) or active

    def _check_timing(self, params: Mapping[str, str]) -> _Rejection | None:
        try:
            timestamp = int(params["timestamp"])
        except (KeyError, ValueError):
            msg = "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            return _Rejection(self._error(400, -1102, msg), "other")
        try:
            recv_window = int(params.get("recvWindow", self.DEFAULT_RECV_WINDOW))
        except ValueError:
            recv_window = -1
        if not 0 < recv_window <= self.MAX_RECV_WINDOW:
            msg = f"recvWindow must be less than {self.MAX_RECV_WINDOW}."
            return _Rejection(self._error(400, -1131, msg), "other")
        server_time = self.server_time_ms()
        if timestamp >= server_time + self.MAX_AHEAD_MS:
            msg = "Timestamp for this request was 1000ms ahead of the server's time."
            return _Rejection(self._error(400, -1021, msg), "timestamp")
        if server_time - timestamp > recv_window:
            msg = "Timestamp for this request is outside of the recvWindow."
            return _Rejection(self._error(400, -1021, msg), "timestamp")
        return None

    def _not_found(self, request: _Request) -> _Reply:
        # Binance answers unknown paths with a bare 404; ccxt maps it to ExchangeNotAvailable.
        return _Reply(404, {"code": -1000, "msg": f"{request.method} {request.path} is not served"})

    # -- public ----------------------------------------------------------------------

    @_route("GET", "/api/v3/ping")
    def _ping(self, request: _Request, key: _Key | None) -> _Reply:
        return _Reply(200, {})

    @_route("GET", "/api/v3/time")
    def _time(self, request: _Request, key: _Key | None) -> _Reply:
        return _Reply(200, {"serverTime": self.server_time_ms()})

    @_route("GET", "/api/v3/exchangeInfo")
    def _spot_exchange_info(self, request: _Request, key: _Key | None) -> _Reply:
        symbols = [_binance_spot_symbol(base, "USDT") for base in ("BTC", "ETH")]
        return _Reply(200, _binance_exchange_info(self.server_time_ms(), symbols))

    @_route("GET", "/fapi/v1/exchangeInfo")
    def _linear_exchange_info(self, request: _Request, key: _Key | None) -> _Reply:
        symbols = [_binance_contract_symbol("BTC", "USDT", "USDT", "BTCUSDT")]
        return _Reply(200, _binance_exchange_info(self.server_time_ms(), symbols))

    @_route("GET", "/dapi/v1/exchangeInfo")
    def _inverse_exchange_info(self, request: _Request, key: _Key | None) -> _Reply:
        symbols = [_binance_contract_symbol("BTC", "USD", "BTC", "BTCUSD_PERP")]
        return _Reply(200, _binance_exchange_info(self.server_time_ms(), symbols))

    # -- signed ----------------------------------------------------------------------

    @_route("GET", "/sapi/v1/capital/config/getall", auth="signed")
    def _capital_config(self, request: _Request, key: _Key | None) -> _Reply:
        coins = [_binance_coin(asset, self.balances.get(asset, "0")) for asset in ("BTC", "ETH", "USDT")]
        return _Reply(200, coins)

    @_route("GET", "/sapi/v1/margin/allPairs", auth="key")
    def _margin_pairs(self, request: _Request, key: _Key | None) -> _Reply:
        pairs = [
            {
                "id": index,
                "symbol": base + "USDT",
                "base": base,
                "quote": "USDT",
                "isMarginTrade": True,
                "isBuyAllowed": True,
                "isSellAllowed": True,
            }
            for index, base in enumerate(("BTC", "ETH"), start=1)
        ]
        return _Reply(200, pairs)

    @_route("GET", "/sapi/v1/margin/isolated/allPairs", auth="signed")
    def _isolated_margin_pairs(self, request: _Request, key: _Key | None) -> _Reply:
        pairs = [
            {
                "symbol": base + "USDT",
                "base": base,
                "quote": "USDT",
                "isMarginTrade": True,
                "isBuyAllowed": True,
                "isSellAllowed": True,
            }
            for base in ("BTC", "ETH")
        ]
        return _Reply(200, pairs)

    @_route("GET", "/api/v3/account", auth="signed")
    def _account(self, request: _Request, key: _Key | None) -> _Reply:
        balances = [{"asset": asset, "free": free, "locked": "0.00000000"} for asset, free in self.balances.items()]
        return _Reply(
            200,
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {"maker": "0.001", "taker": "0.001", "buyer": "0", "seller": "0"},
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.server_time_ms(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": 1,
            },
        )

    @_route("POST", "/api/v3/order", auth="signed")
    def _new_order(self, request: _Request, key: _Key | None) -> _Reply:
        params = dict(parse_qsl(request.query)) | dict(parse_qsl(request.text))
        params.pop("signature", None)
        order_id = self._record_order(params)
        now = self.server_time_ms()
        quantity = params.get("quantity", "0")
        is_market = params.get("type") == "MARKET"
        return _Reply(
            200,
            {
                "symbol": params.get("symbol", ""),
                "orderId": order_id,
                "orderListId": -1,
                "clientOrderId": params.get("newClientOrderId", f"local-{order_id}"),
                "transactTime": now,
                "price": params.get("price", "0.00000000"),
                "origQty": quantity,
                "executedQty": quantity if is_market else "0.00000000",
                "cummulativeQuoteQty": "0.00000000",
                "status": "FILLED" if is_market else "NEW",
                "timeInForce": params.get("timeInForce", "GTC"),
                "type": params.get("type", "LIMIT"),
                "side": params.get("side", "BUY"),
                "workingTime": now,
                "selfTradePreventionMode": "NONE",
                "fills": [],
            },
        )


def _binance_exchange_info(server_time: int, symbols: list[Json]) -> Json:
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": symbols,
    }


def _binance_filters(tick: str, step: str) -> list[Json]:
    return [
        {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000", "tickSize": tick},
        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000", "stepSize": step},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0", "maxQty": "100", "stepSize": "0"},
        {"filterType": "NOTIONAL", "minNotional": "5", "applyMinToMarket": True, "maxNotional": "9000000"},
    ]


def _binance_spot_symbol(base: str, quote: str) -> Json:
    return {
        "symbol": base + quote,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": _binance_filters("0.01", "0.00001"),
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _binance_contract_symbol(base: str, quote: str, margin: str, symbol: str) -> Json:
    return {
        "symbol": symbol,
        "pair": base + quote,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "contractStatus": "TRADING",
        "contractSize": 100 if margin == base else 1,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": base,
        "quoteAsset": quote,
        "marginAsset": margin,
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": _binance_filters("0.10", "0.001"),
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def _binance_coin(asset: str, free: str) -> Json:
    return {
        "coin": asset,
        "name": asset,
        "free": free,
        "locked": "0",
        "freeze": "0",
        "withdrawing": "0",
        "ipoing": "0",
        "ipoable": "0",
        "storage": "0",
        "isLegalMoney": False,
        "trading": True,
        "depositAllEnable": True,
        "withdrawAllEnable": True,
        "networkList": [
            {
                "network": asset,
                "coin": asset,
                "name": asset,
                "isDefault": True,
                "depositEnable": True,
                "withdrawEnable": True,
                "withdrawFee": "0.0001",
                "withdrawMin": "0.001",
                "withdrawMax": "9000",
                "withdrawIntegerMultiple": "0.00000001",
                "minConfirm": 1,
                "unLockConfirm": 2,
                "busy": False,
            }
        ],
    }


# ======================================================================================
# KuCoin
# ======================================================================================


@_collect_routes
class KucoinEndpoint(_ExchangeEndpoint):
    """KuCoin spot REST API (``/api/v1``-``/api/v3``, ``/api/ua/v1``).

    Private endpoints, per KuCoin's "Authentication" docs:

    * headers ``KC-API-KEY``, ``KC-API-SIGN``, ``KC-API-TIMESTAMP`` (ms),
      ``KC-API-PASSPHRASE`` and ``KC-API-KEY-VERSION``; a missing one gives
      ``400001`` (HTTP 401);
    * ``KC-API-SIGN`` = base64(HMAC-SHA256(secret, timestamp + METHOD + endpoint + body)),
      where *endpoint* is the request path plus ``?`` + query string when there is one,
      and *body* is the raw request body (empty for GET). A mismatch gives
      ``400005 Invalid KC-API-SIGN`` (HTTP 401);
    * keys are created as version 2, for which ``KC-API-PASSPHRASE`` must be
      base64(HMAC-SHA256(secret, passphrase)) and ``KC-API-KEY-VERSION`` must be ``2``;
      anything else gives ``400004 Invalid KC-API-PASSPHRASE`` (HTTP 401);
    * unknown or revoked key: ``400003 KC-API-KEY not exists`` (HTTP 401);
    * the timestamp must be within 5 seconds of the server's clock, else
      ``400002 Invalid KC-API-TIMESTAMP`` (HTTP 400), which ccxt maps to InvalidNonce.

    Credentials (key, signature, passphrase) are checked before the timestamp.

    Served - what ccxt's ``load_markets()`` + ``fetch_balance()`` + ``create_order()``
    call: public ``GET /api/v1/timestamp``, ``/api/v3/currencies``, ``/api/v2/symbols``,
    ``/api/v1/market/allTickers``, ``/api/v1/contracts/active`` (empty: spot only);
    signed ``GET /api/ua/v1/account/mode`` (a classic account),
    ``/api/v1/hf/accounts/opened`` (false), ``/api/v3/margin/symbols``,
    ``/api/v1/isolated/symbols``, ``/api/v1/accounts`` and ``POST /api/v1/orders``.
    """

    TIMESTAMP_WINDOW_MS: ClassVar[int] = 5000

    @staticmethod
    def _error(status: int, code: str, msg: str) -> _Reply:
        return _Reply(status, {"code": code, "msg": msg})

    @staticmethod
    def _ok(data: Json) -> _Reply:
        return _Reply(200, {"code": "200000", "data": data})

    def _authenticate(self, request: _Request, level: AuthLevel) -> _Key | _Rejection:
        api_key = request.header("KC-API-KEY")
        sign = request.header("KC-API-SIGN")
        timestamp = request.header("KC-API-TIMESTAMP")
        passphrase = request.header("KC-API-PASSPHRASE")
        if not (api_key and sign and timestamp and passphrase):
            msg = (
                "Please check the header of your request for "
                "KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, KC-API-PASSPHRASE"
            )
            return _Rejection(self._error(401, "400001", msg), "auth")
        endpoint = request.path + ("?" + request.query if request.query else "")
        prehash = timestamp + request.method.upper() + endpoint + request.text

        version_2 = request.header("KC-API-KEY-VERSION") == "2"

        def signs(key: _Key) -> bool:
            return _same(_b64_hmac(key.secret, prehash), sign)

        def passphrase_ok(key: _Key) -> bool:
            return version_2 and _same(_b64_hmac(key.secret, key.passphrase or ""), passphrase)

        active, known, every_key = self._lookup(api_key)

        def passphrase_of(key: _Key) -> bool:
            # The header is HMAC(secret, passphrase): either part may come from `key` while
            # the other comes from the claimed key. A plain-text passphrase also identifies it.
            if known is None:
                return False
            pairs = {
                (key.secret, key.passphrase),
                (known.secret, key.passphrase),
                (key.secret, known.passphrase),
            }
            return any(
                phrase is not None and (_same(_b64_hmac(secret, phrase), passphrase) or _same(phrase, passphrase))
                for secret, phrase in pairs
            )

        def reject(code: str, msg: str) -> _Rejection:
            mixed = _is_mixed(known, every_key, signs, passphrase_of)
            return _Rejection(self._error(401, code, msg), "auth", mixed)

        if active is None:
            return reject("400003", "KC-API-KEY not exists")
        if not signs(active):
            return reject("400005", "Invalid KC-API-SIGN")
        if not passphrase_ok(active):
            return reject("400004", "Invalid KC-API-PASSPHRASE")
        try:
            skew = abs(self.server_time_ms() - int(timestamp))
        except ValueError:
            skew = self.TIMESTAMP_WINDOW_MS + 1
        if skew > self.TIMESTAMP_WINDOW_MS:
            return _Rejection(self._error(400, "400002", "Invalid KC-API-TIMESTAMP"), "timestamp")
        return active

    def _not_found(self, request: _Request) -> _Reply:
        return _Reply(404, {"code": "404000", "msg": f"{request.method} {request.path} is not served"})

    @_route("GET", "/api/v1/timestamp")
    def _timestamp(self, request: _Request, key: _Key | None) -> _Reply:
        return self._ok(self.server_time_ms())

    @_route("GET", "/api/ua/v1/account/mode", auth="signed")
    def _account_mode(self, request: _Request, key: _Key | None) -> _Reply:
        # A classic (non-unified) account: ccxt then uses the classic spot endpoints.
        return self._ok({"selfAccountMode": "CLASSIC"})

    @_route("GET", "/api/v1/hf/accounts/opened", auth="signed")
    def _hf_opened(self, request: _Request, key: _Key | None) -> _Reply:
        # Not migrated to high-frequency accounts: balances and orders use the classic paths.
        return self._ok(False)

    @_route("GET", "/api/v3/currencies")
    def _currencies(self, request: _Request, key: _Key | None) -> _Reply:
        return self._ok([_kucoin_currency(code) for code in ("BTC", "ETH", "USDT")])

    @_route("GET", "/api/v2/symbols")
    def _symbols(self, request: _Request, key: _Key | None) -> _Reply:
        return self._ok([_kucoin_symbol(base) for base in ("BTC", "ETH")])

    @_route("GET", "/api/v3/margin/symbols", auth="signed")
    def _margin_symbols(self, request: _Request, key: _Key | None) -> _Reply:
        items = [_kucoin_symbol(base) for base in ("BTC", "ETH")]
        return self._ok({"timestamp": self.server_time_ms(), "items": items})

    @_route("GET", "/api/v1/isolated/symbols", auth="signed")
    def _isolated_symbols(self, request: _Request, key: _Key | None) -> _Reply:
        return self._ok(
            [
                {
                    "symbol": f"{base}-USDT",
                    "symbolName": f"{base}-USDT",
                    "baseCurrency": base,
                    "quoteCurrency": "USDT",
                    "maxLeverage": 10,
                    "flDebtRatio": "0.97",
                    "tradeEnable": True,
                    "autoRenewMaxDebtRatio": "0.96",
                    "baseBorrowEnable": True,
                    "quoteBorrowEnable": True,
                    "baseTransferInEnable": True,
                    "quoteTransferInEnable": True,
                }
                for base in ("BTC", "ETH")
            ]
        )

    @_route("GET", "/api/v1/market/allTickers")
    def _all_tickers(self, request: _Request, key: _Key | None) -> _Reply:
        tickers = [
            {
                "symbol": f"{base}-USDT",
                "symbolName": f"{base}-USDT",
                "buy": price,
                "sell": price,
                "bestBidSize": "1",
                "bestAskSize": "1",
                "changeRate": "0",
                "changePrice": "0",
                "high": price,
                "low": price,
                "vol": "100",
                "volValue": "100",
                "last": price,
                "averagePrice": price,
                "takerFeeRate": "0.001",
                "makerFeeRate": "0.001",
                "takerCoefficient": "1",
                "makerCoefficient": "1",
            }
            for base, price in (("BTC", "60000"), ("ETH", "3000"))
        ]
        return self._ok({"time": self.server_time_ms(), "ticker": tickers})

    @_route("GET", "/api/v1/contracts/active")
    def _contracts(self, request: _Request, key: _Key | None) -> _Reply:
        # Futures markets live on another host; this endpoint models a spot-only venue.
        return self._ok([])

    @_route("GET", "/api/v1/accounts", auth="signed")
    def _accounts(self, request: _Request, key: _Key | None) -> _Reply:
        wanted = dict(parse_qsl(request.query)).get("type", "trade")
        accounts = [
            {
                "id": f"{index:024x}",
                "currency": currency,
                "type": "trade",
                "balance": available,
                "available": available,
                "holds": "0",
            }
            for index, (currency, available) in enumerate(self.balances.items(), start=1)
        ]
        return self._ok([a for a in accounts if a["type"] == wanted])

    @_route("POST", "/api/v1/orders", auth="signed")
    def _new_order(self, request: _Request, key: _Key | None) -> _Reply:
        try:
            order = json.loads(request.body or b"{}")
        except ValueError:
            return self._error(400, "400100", "Invalid JSON body")
        order_id = self._record_order(order)
        return self._ok({"orderId": f"{order_id:024x}", "clientOid": order.get("clientOid")})


def _kucoin_currency(code: str) -> Json:
    return {
        "currency": code,
        "name": code,
        "fullName": code,
        "precision": 8,
        "confirms": None,
        "contractAddress": None,
        "isMarginEnabled": True,
        "isDebitEnabled": True,
        "chains": [
            {
                "chainName": code,
                "chainId": code.lower(),
                "withdrawalMinSize": "0.001",
                "depositMinSize": "0.0001",
                "withdrawFeeRate": "0",
                "withdrawalMinFee": "0.0001",
                "isWithdrawEnabled": True,
                "isDepositEnabled": True,
                "confirms": 3,
                "preConfirms": 1,
                "contractAddress": "",
                "withdrawPrecision": 8,
                "maxWithdraw": None,
                "maxDeposit": None,
                "needTag": False,
            }
        ],
    }


def _kucoin_symbol(base: str) -> Json:
    return {
        "symbol": f"{base}-USDT",
        "name": f"{base}-USDT",
        "baseCurrency": base,
        "quoteCurrency": "USDT",
        "feeCurrency": "USDT",
        "market": "USDS",
        "baseMinSize": "0.00001",
        "quoteMinSize": "0.1",
        "baseMaxSize": "10000000000",
        "quoteMaxSize": "99999999",
        "baseIncrement": "0.00000001",
        "quoteIncrement": "0.000001",
        "priceIncrement": "0.01",
        "priceLimitRate": "0.1",
        "minFunds": "0.1",
        "isMarginEnabled": True,
        "enableTrading": True,
        "feeCategory": 1,
        "makerFeeCoefficient": "1.00",
        "takerFeeCoefficient": "1.00",
        "st": False,
    }


# ======================================================================================
# Bitget
# ======================================================================================


@_collect_routes
class BitgetEndpoint(_ExchangeEndpoint):
    """Bitget REST API v2 (``/api/v2/spot``, ``/api/v2/mix``).

    Private endpoints, per Bitget's "Signature" and common error-code docs:

    * headers ``ACCESS-KEY``, ``ACCESS-SIGN``, ``ACCESS-TIMESTAMP`` (ms) and
      ``ACCESS-PASSPHRASE`` (the passphrase in plain text);
    * ``ACCESS-SIGN`` = base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath +
      ("?" + queryString if the query string is not empty) + body));
    * missing key ``40001``, missing sign ``40003``, missing passphrase ``40011``,
      malformed timestamp ``40005``; unknown or revoked key ``40006 Invalid ACCESS_KEY``;
      bad signature ``40009 sign signature error``; wrong passphrase
      ``40012 apikey/password is incorrect``; timestamp more than 30 s away from the
      server's clock ``40008 Request timestamp expired`` (ccxt: InvalidNonce). Bitget
      answers these with HTTP 400 and ``{"code", "msg", "requestTime", "data": null}``.

    Credentials (key, signature, passphrase) are checked before the timestamp.

    The endpoint models a *classic* account: signed ``GET /api/v3/account/settings``
    (ccxt's unified-account probe) answers ``40084``, so ccxt uses the v2 API. Served -
    what ccxt's ``load_markets()`` + ``fetch_balance()`` + ``create_order()`` call, spot
    or swap: public ``GET /api/v2/public/time``, ``/api/v2/spot/public/coins``,
    ``/api/v2/spot/public/symbols``, ``/api/v2/margin/currencies`` (empty),
    ``/api/v2/mix/market/contracts`` (USDT-FUTURES only); signed
    ``GET /api/v2/spot/account/assets``, ``/api/v2/mix/account/accounts``,
    ``POST /api/v2/spot/trade/place-order`` and ``/api/v2/mix/order/place-order``.
    """

    TIMESTAMP_WINDOW_MS: ClassVar[int] = 30_000

    def _error(self, code: str, msg: str, status: int = 400) -> _Reply:
        return _Reply(status, {"code": code, "msg": msg, "requestTime": self.server_time_ms(), "data": None})

    def _ok(self, data: Json) -> _Reply:
        return _Reply(200, {"code": "00000", "msg": "success", "requestTime": self.server_time_ms(), "data": data})

    def _authenticate(self, request: _Request, level: AuthLevel) -> _Key | _Rejection:
        api_key = request.header("ACCESS-KEY")
        sign = request.header("ACCESS-SIGN")
        timestamp = request.header("ACCESS-TIMESTAMP")
        passphrase = request.header("ACCESS-PASSPHRASE")
        if not api_key:
            return _Rejection(self._error("40001", "ACCESS_KEY cannot be empty"), "auth")
        if not sign:
            return _Rejection(self._error("40003", "Signature cannot be empty"), "auth")
        if not passphrase:
            return _Rejection(self._error("40011", "ACCESS_PASSPHRASE cannot be empty"), "auth")
        if not (timestamp and timestamp.isdigit()):
            return _Rejection(self._error("40005", "Invalid ACCESS_TIMESTAMP"), "timestamp")
        prehash = timestamp + request.method.upper() + request.path
        prehash += ("?" + request.query if request.query else "") + request.text

        def signs(key: _Key) -> bool:
            return _same(_b64_hmac(key.secret, prehash), sign)

        def passphrase_of(key: _Key) -> bool:
            return _same(key.passphrase or "", passphrase)

        active, known, every_key = self._lookup(api_key)

        def reject(code: str, msg: str) -> _Rejection:
            return _Rejection(self._error(code, msg), "auth", _is_mixed(known, every_key, signs, passphrase_of))

        if active is None:
            return reject("40006", "Invalid ACCESS_KEY")
        if not signs(active):
            return reject("40009", "sign signature error")
        if not passphrase_of(active):
            return reject("40012", "apikey/password is incorrect")
        if abs(self.server_time_ms() - int(timestamp)) > self.TIMESTAMP_WINDOW_MS:
            return _Rejection(self._error("40008", "Request timestamp expired"), "timestamp")
        return active

    def _not_found(self, request: _Request) -> _Reply:
        return self._error("40404", f"{request.method} {request.path} is not served", status=404)

    @_route("GET", "/api/v2/public/time")
    def _time(self, request: _Request, key: _Key | None) -> _Reply:
        return self._ok({"serverTime": str(self.server_time_ms())})

    @_route("GET", "/api/v3/account/settings", auth="signed")
    def _uta_settings(self, request: _Request, key: _Key | None) -> _Reply:
        # The endpoint models a classic (non-unified) account: Bitget turns classic keys
        # away from the UTA v3 API with 40084, and ccxt then falls back to the v2 API.
        return self._error("40084", "You are in Classic Account mode, and cannot use the UTA API")

    @_route("GET", "/api/v2/spot/public/coins")
    def _coins(self, request: _Request, key: _Key | None) -> _Reply:
        return self._ok([_bitget_coin(index, coin) for index, coin in enumerate(("BTC", "ETH", "USDT"), 1)])

    @_route("GET", "/api/v2/spot/public/symbols")
    def _spot_symbols(self, request: _Request, key: _Key | None) -> _Reply:
        return self._ok([_bitget_spot_symbol(base) for base in ("BTC", "ETH")])

    @_route("GET", "/api/v2/margin/currencies")
    def _margin_currencies(self, request: _Request, key: _Key | None) -> _Reply:
        return self._ok([])  # no margin trading on this venue

    @_route("GET", "/api/v2/mix/market/contracts")
    def _contracts(self, request: _Request, key: _Key | None) -> _Reply:
        product_type = dict(parse_qsl(request.query)).get("productType", "").upper()
        contracts = [_bitget_contract(base) for base in ("BTC", "ETH")] if product_type == "USDT-FUTURES" else []
        return self._ok(contracts)

    @_route("GET", "/api/v2/spot/account/assets", auth="signed")
    def _spot_assets(self, request: _Request, key: _Key | None) -> _Reply:
        now = str(self.server_time_ms())
        assets = [
            {
                "coin": coin,
                "available": available,
                "frozen": "0",
                "locked": "0",
                "limitAvailable": "0",
                "uTime": now,
            }
            for coin, available in self.balances.items()
        ]
        return self._ok(assets)

    @_route("GET", "/api/v2/mix/account/accounts", auth="signed")
    def _futures_accounts(self, request: _Request, key: _Key | None) -> _Reply:
        available = self.balances.get("USDT", "0")
        account = {
            "marginCoin": "USDT",
            "locked": "0",
            "available": available,
            "crossedMaxAvailable": available,
            "isolatedMaxAvailable": available,
            "maxTransferOut": available,
            "accountEquity": available,
            "usdtEquity": available,
            "btcEquity": "0",
            "crossedRiskRate": "0",
            "unrealizedPL": "0",
            "coupon": "0",
            "crossedUnrealizedPL": "0",
            "isolatedUnrealizedPL": "0",
        }
        return self._ok([account])

    @_route("POST", "/api/v2/mix/order/place-order", auth="signed")
    def _futures_order(self, request: _Request, key: _Key | None) -> _Reply:
        return self._place_order(request)

    @_route("POST", "/api/v2/spot/trade/place-order", auth="signed")
    def _spot_order(self, request: _Request, key: _Key | None) -> _Reply:
        return self._place_order(request)

    def _place_order(self, request: _Request) -> _Reply:
        try:
            order = json.loads(request.body or b"{}")
        except ValueError:
            return self._error("40017", "Parameter verification failed")
        order_id = self._record_order(order)
        return self._ok({"orderId": str(1_000_000 + order_id), "clientOid": order.get("clientOid")})


def _bitget_coin(index: int, coin: str) -> Json:
    chain = {
        "chain": coin,
        "needTag": "false",
        "withdrawable": "true",
        "rechargeable": "true",
        "withdrawFee": "0.0001",
        "extraWithdrawFee": "0",
        "depositConfirm": "1",
        "withdrawConfirm": "1",
        "minDepositAmount": "0.0001",
        "minWithdrawAmount": "0.001",
        "browserUrl": "",
        "contractAddress": "",
        "withdrawStep": "0",
        "withdrawMinScale": "8",
        "congestion": "normal",
    }
    return {"coinId": str(index), "coin": coin, "transfer": "true", "chains": [chain], "areaCoin": "no"}


def _bitget_spot_symbol(base: str) -> Json:
    return {
        "symbol": f"{base}USDT",
        "baseCoin": base,
        "quoteCoin": "USDT",
        "minTradeAmount": "0",
        "maxTradeAmount": "10000000000",
        "takerFeeRate": "0.001",
        "makerFeeRate": "0.001",
        "pricePrecision": "2",
        "quantityPrecision": "6",
        "quotePrecision": "8",
        "status": "online",
        "minTradeUSDT": "1",
        "buyLimitPriceRatio": "0.05",
        "sellLimitPriceRatio": "0.05",
        "areaSymbol": "no",
        "orderQuantity": "200",
        "openTime": "1532454360000",
    }


def _bitget_contract(base: str) -> Json:
    return {
        "symbol": f"{base}USDT",
        "baseCoin": base,
        "quoteCoin": "USDT",
        "buyLimitPriceRatio": "0.01",
        "sellLimitPriceRatio": "0.01",
        "feeRateUpRatio": "0.005",
        "makerFeeRate": "0.0002",
        "takerFeeRate": "0.0006",
        "openCostUpRatio": "0.01",
        "supportMarginCoins": ["USDT"],
        "minTradeNum": "0.001",
        "priceEndStep": "1",
        "volumePlace": "3",
        "pricePlace": "1",
        "sizeMultiplier": "0.001",
        "symbolType": "perpetual",
        "minTradeUSDT": "5",
        "maxSymbolOrderNum": "200",
        "maxProductOrderNum": "400",
        "maxPositionNum": "150",
        "symbolStatus": "normal",
        "offTime": "-1",
        "limitOpenTime": "-1",
        "deliveryTime": "",
        "deliveryStartTime": "",
        "launchTime": "",
        "fundInterval": "8",
        "minLever": "1",
        "maxLever": "125",
        "posLimit": "0.05",
        "maintainTime": "",
    }


# ======================================================================================
# OpenAI
# ======================================================================================

FailureKind = Literal["rate_limit", "insufficient_quota", "server_error"]


@_collect_routes
class OpenAIEndpoint(_Endpoint):
    """OpenAI REST API subset: ``POST /v1/chat/completions`` and ``GET /v1/models``.

    Per OpenAI's "Authentication" and "Error codes" docs:

    * the key travels as ``Authorization: Bearer <key>``; no key gives 401 with
      ``code: null``, an unknown or revoked key gives 401 ``invalid_api_key`` (type
      ``invalid_request_error``), whose message names the key masked to its last 4
      characters (see ``mask_key``) - never the whole key;
    * ``fail_next(n, kind)`` / ``force(kind)`` make authenticated requests fail with
      429 ``rate_limit_exceeded`` (with ``Retry-After``), 429 ``insufficient_quota``
      (type ``insufficient_quota``, no ``Retry-After``: waiting does not help) or 500
      ``server_error``. openai-python raises RateLimitError for both 429s; only
      ``exc.code`` / ``exc.body["code"]`` tells them apart.

    A valid request gets a well-formed ``chat.completion`` whose model echoes the request
    and whose content is ``"ok: " + the first 20 characters of the last user message``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.retry_after_s = 1
        """Seconds announced in ``Retry-After`` on rate-limit 429s."""
        self._forced: FailureKind | None = None
        self._pending: list[FailureKind] = []
        self._completion_ids = itertools.count(1)

    def allow(self, api_key: str, secret: str = "", passphrase: str | None = None) -> None:
        """Register an API key as valid from now on (OpenAI keys have no secret part)."""
        super().allow(api_key, secret, passphrase)

    def fail_next(self, n: int = 1, kind: FailureKind = "rate_limit") -> None:
        """Answer the next ``n`` authenticated requests with a ``kind`` failure."""
        with self._lock:
            self._pending.extend([kind] * n)

    def force(self, kind: FailureKind | None) -> None:
        """Answer every authenticated request with a ``kind`` failure until ``force(None)``."""
        with self._lock:
            self._forced = kind

    @staticmethod
    def _error(status: int, message: str, type_: str, code: str | None, param: str | None = None) -> _Reply:
        return _Reply(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})

    def _failure(self, kind: FailureKind) -> _Reply:
        if kind == "rate_limit":
            reply = self._error(
                429,
                "Rate limit reached for requests per min (RPM). Please try again in "
                f"{self.retry_after_s}s. "
                "Visit https://platform.openai.com/account/rate-limits to learn more.",
                "requests",
                "rate_limit_exceeded",
            )
            return _Reply(reply.status, reply.body, (("Retry-After", str(self.retry_after_s)),))
        if kind == "insufficient_quota":
            return self._error(
                429,
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                "insufficient_quota",
            )
        return self._error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        )

    def _authenticate(self, request: _Request, level: AuthLevel) -> _Key | _Rejection:
        scheme, _, api_key = (request.header("Authorization") or "").partition(" ")
        api_key = api_key.strip()
        if scheme.lower() != "bearer" or not api_key:
            msg = (
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
                "(with blank username) if you're accessing the API from your browser and are prompted for a "
                "username and password. You can obtain an API key from https://platform.openai.com/account/api-keys."
            )
            return _Rejection(self._error(401, msg, "invalid_request_error", None), "auth")
        active, _, _ = self._lookup(api_key)
        if active is None:
            msg = (
                f"Incorrect API key provided: {mask_key(api_key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return _Rejection(self._error(401, msg, "invalid_request_error", "invalid_api_key"), "auth")
        with self._lock:
            failure = self._pending.pop(0) if self._pending else self._forced
        if failure is not None:
            return _Rejection(self._failure(failure), "throttled")
        return active

    def _key_label(self, api_key: str) -> str:
        return mask_key(api_key)  # an OpenAI key is the whole credential

    def _not_found(self, request: _Request) -> _Reply:
        msg = f"Invalid URL ({request.method} {request.path})"
        return self._error(404, msg, "invalid_request_error", None)

    @_route("GET", "/v1/models", auth="signed")
    def _models(self, request: _Request, key: _Key | None) -> _Reply:
        models = [
            {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
            for model in ("gpt-4o-mini", "gpt-4o")
        ]
        return _Reply(200, {"object": "list", "data": models})

    @_route("POST", "/v1/chat/completions", auth="signed")
    def _chat_completions(self, request: _Request, key: _Key | None) -> _Reply:
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            msg = "We could not parse the JSON body of your request."
            return self._error(400, msg, "invalid_request_error", None)
        model = payload.get("model")
        messages = payload.get("messages")
        if not isinstance(model, str) or not model:
            return self._error(400, "you must provide a model parameter", "invalid_request_error", None)
        if not isinstance(messages, list) or not messages:
            msg = "Missing required parameter: 'messages'."
            return self._error(400, msg, "invalid_request_error", "missing_required_parameter", "messages")
        if payload.get("stream"):
            msg = "stream=true is not supported by this local endpoint."
            return self._error(400, msg, "invalid_request_error", None, "stream")
        prompt = " ".join(_message_text(message) for message in messages if isinstance(message, dict))
        user_texts = [_message_text(m) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        content = "ok: " + (user_texts[-1][:20] if user_texts else "")
        prompt_tokens = max(1, len(prompt.split()))
        completion_tokens = len(content.split())
        return _Reply(
            200,
            {
                "id": f"chatcmpl-local{next(self._completion_ids):08d}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_local",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


def _message_text(message: Mapping[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""
