"""Tests of the local exchange / OpenAI endpoints and of ``rebase_urls``.

Happy paths and error classification go through real ccxt and openai clients; signature
edge cases use raw HTTP with signatures computed here by hand from the services' docs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import ccxt
import ccxt.async_support as ccxt_async
import openai
import pytest
import requests

from credbroker._urls import rebase_urls
from credbroker.testing.endpoints import (
    BinanceEndpoint,
    BitgetEndpoint,
    KucoinEndpoint,
    OpenAIEndpoint,
    mask_key,
)

KEY_V1, SECRET_V1, PASS_V1 = "key-v1-0001", "secret-v1-aaaa", "pass-v1"
KEY_V2, SECRET_V2, PASS_V2 = "key-v2-0002", "secret-v2-bbbb", "pass-v2"
OPENAI_KEY = "sk-test-local-0123456789abcdef"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def binance() -> Iterator[BinanceEndpoint]:
    with BinanceEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def kucoin() -> Iterator[KucoinEndpoint]:
    with KucoinEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def bitget() -> Iterator[BitgetEndpoint]:
    with BitgetEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def openai_endpoint() -> Iterator[OpenAIEndpoint]:
    with OpenAIEndpoint() as endpoint:
        yield endpoint


ClientFactory = Callable[..., Any]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Build sync ccxt clients pointed at an endpoint; all are closed at teardown."""
    clients: list[Any] = []

    def make(
        exchange_id: str,
        endpoint: Any,
        api_key: str = KEY_V1,
        secret: str = SECRET_V1,
        password: str | None = PASS_V1,
        **options: Any,
    ) -> Any:
        config: dict[str, Any] = {"apiKey": api_key, "secret": secret, "enableRateLimit": False}
        if password is not None:
            config["password"] = password
        if options:
            config["options"] = options
        client = getattr(ccxt, exchange_id)(config)
        client.urls["api"] = rebase_urls(client.urls["api"], endpoint.url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# -- hand-made signatures, straight from the docs -----------------------------------


def binance_signature(secret: str, total_params: str) -> str:
    return hmac.new(secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()


def binance_get(endpoint: BinanceEndpoint, path: str, params: dict[str, Any], **kw: Any) -> requests.Response:
    api_key = kw.pop("api_key", KEY_V1)
    secret = kw.pop("secret", SECRET_V1)
    query = urlencode(params)
    query += "&signature=" + binance_signature(secret, query)
    return requests.get(f"{endpoint.url}{path}?{query}", headers={"X-MBX-APIKEY": api_key}, timeout=5)


def kucoin_headers(
    method: str,
    endpoint_path: str,
    body: str = "",
    *,
    api_key: str = KEY_V1,
    secret: str = SECRET_V1,
    passphrase: str = PASS_V1,
    passphrase_secret: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    ts = str(now_ms() if timestamp is None else timestamp)
    sign = hmac.new(secret.encode(), (ts + method + endpoint_path + body).encode(), hashlib.sha256).digest()
    phrase_key = (passphrase_secret or secret).encode()
    phrase = hmac.new(phrase_key, passphrase.encode(), hashlib.sha256).digest()
    return {
        "KC-API-KEY": api_key,
        "KC-API-SIGN": base64.b64encode(sign).decode(),
        "KC-API-TIMESTAMP": ts,
        "KC-API-PASSPHRASE": base64.b64encode(phrase).decode(),
        "KC-API-KEY-VERSION": "2",
        "Content-Type": "application/json",
    }


def bitget_headers(
    method: str,
    request_path: str,
    query: str = "",
    body: str = "",
    *,
    api_key: str = KEY_V1,
    secret: str = SECRET_V1,
    passphrase: str = PASS_V1,
    timestamp: int | None = None,
) -> dict[str, str]:
    ts = str(now_ms() if timestamp is None else timestamp)
    prehash = ts + method + request_path + ("?" + query if query else "") + body
    sign = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return {
        "ACCESS-KEY": api_key,
        "ACCESS-SIGN": base64.b64encode(sign).decode(),
        "ACCESS-TIMESTAMP": ts,
        "ACCESS-PASSPHRASE": passphrase,
        "Content-Type": "application/json",
    }


# ======================================================================================
# rebase_urls
# ======================================================================================


def test_rebase_urls_replaces_scheme_and_host_and_keeps_the_path() -> None:
    urls = {"public": "https://api.binance.com/api/v3", "sapi": "https://api.binance.com/sapi/v1"}
    assert rebase_urls(urls, "http://127.0.0.1:8080") == {
        "public": "http://127.0.0.1:8080/api/v3",
        "sapi": "http://127.0.0.1:8080/sapi/v1",
    }


def test_rebase_urls_rebases_hostname_placeholders() -> None:
    assert rebase_urls({"spot": "https://api.{hostname}"}, "http://proxy:1") == {"spot": "http://proxy:1"}
    assert rebase_urls("https://api.{hostname}/v2", "http://proxy:1") == "http://proxy:1/v2"


def test_rebase_urls_ignores_a_trailing_slash_on_the_base() -> None:
    assert rebase_urls("https://api.kucoin.com/api", "http://h:2/") == "http://h:2/api"


def test_rebase_urls_keeps_a_path_prefix_of_the_base() -> None:
    assert rebase_urls("https://fapi.binance.com/fapi/v1", "https://gw.example/binance") == (
        "https://gw.example/binance/fapi/v1"
    )


def test_rebase_urls_returns_a_deep_copy_and_leaves_the_input_alone() -> None:
    original = {"rest": {"public": "https://a.example/x"}, "list": ["https://b.example/y"]}
    rebased = rebase_urls(original, "http://h:3")
    assert rebased == {"rest": {"public": "http://h:3/x"}, "list": ["http://h:3/y"]}
    assert original == {"rest": {"public": "https://a.example/x"}, "list": ["https://b.example/y"]}
    assert isinstance(rebased, dict)
    assert rebased["rest"] is not original["rest"]


def test_rebase_urls_leaves_values_that_are_not_urls_unchanged() -> None:
    assert rebase_urls({"a": "not a url", "b": 3, "c": None}, "http://h:4") == {
        "a": "not a url",
        "b": 3,
        "c": None,
    }


@pytest.mark.parametrize("exchange_id", ["binance", "kucoin", "bitget"])
def test_rebase_urls_points_every_ccxt_api_url_at_the_base(exchange_id: str) -> None:
    def strings(value: object) -> Iterator[str]:
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    exchange = getattr(ccxt, exchange_id)()
    rebased = list(strings(rebase_urls(exchange.urls["api"], "http://127.0.0.1:9")))
    assert rebased
    assert all(url.startswith("http://127.0.0.1:9") for url in rebased)
    assert not any("{hostname}" in url for url in rebased)


# ======================================================================================
# lifecycle and stats
# ======================================================================================


def test_endpoint_listens_on_loopback_on_an_os_assigned_port() -> None:
    with BinanceEndpoint() as first, BinanceEndpoint() as second:
        assert first.url.startswith("http://127.0.0.1:")
        assert first.url != second.url
        assert requests.get(first.url + "/api/v3/ping", timeout=5).json() == {}


def test_stop_closes_the_port_and_joins_the_server_thread() -> None:
    endpoint = BinanceEndpoint().start()
    port = int(endpoint.url.rsplit(":", 1)[1])
    threads_before = {t.name for t in threading.enumerate()}
    endpoint.stop()
    assert not any(name.startswith("BinanceEndpoint-") for name in {t.name for t in threading.enumerate()})
    assert any(name.startswith("BinanceEndpoint-") for name in threads_before)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_stop_returns_promptly_while_a_client_holds_a_keep_alive_connection() -> None:
    endpoint = BinanceEndpoint().start()
    with requests.Session() as session:
        assert session.get(endpoint.url + "/api/v3/ping", timeout=5).status_code == 200
        started = time.monotonic()
        endpoint.stop()
        assert time.monotonic() - started < 2


def test_stop_twice_is_harmless_and_a_stopped_endpoint_has_no_url() -> None:
    endpoint = BinanceEndpoint().start()
    endpoint.stop()
    endpoint.stop()
    with pytest.raises(RuntimeError):
        _ = endpoint.url


def test_starting_a_running_endpoint_is_an_error(binance: BinanceEndpoint) -> None:
    with pytest.raises(RuntimeError):
        binance.start()


def test_stats_are_a_snapshot_and_can_be_reset(binance: BinanceEndpoint) -> None:
    requests.get(binance.url + "/api/v3/time", timeout=5)
    snapshot = binance.stats
    requests.get(binance.url + "/api/v3/time", timeout=5)
    assert snapshot.public == 1
    assert snapshot.by_path == {"GET /api/v3/time": 1}
    assert binance.stats.public == 2
    binance.reset_stats()
    assert binance.stats.total == 0


def test_unknown_path_is_a_404_counted_as_other(binance: BinanceEndpoint) -> None:
    response = requests.get(binance.url + "/api/v3/nope", timeout=5)
    assert response.status_code == 404
    assert binance.stats.rejected_other == 1


def test_endpoint_keeps_up_with_32_concurrent_clients(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    deadline = time.monotonic() + 1.5
    statuses: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                query = urlencode({"timestamp": now_ms()})
                query += "&signature=" + binance_signature(SECRET_V1, query)
                response = session.get(
                    f"{binance.url}/api/v3/account?{query}", headers={"X-MBX-APIKEY": KEY_V1}, timeout=10
                )
                with lock:
                    statuses.append(response.status_code)

    workers = [threading.Thread(target=client) for _ in range(32)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(statuses) > 320  # > 10 requests per client per 1.5 s
    assert set(statuses) == {200}
    assert binance.stats.accepted == len(statuses)


# ======================================================================================
# Binance
# ======================================================================================


def test_binance_accepts_request_signed_with_registered_key(
    binance: BinanceEndpoint, make_client: ClientFactory
) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    balance = make_client("binance", binance).fetch_balance()
    assert balance["free"]["BTC"] == 0.5
    assert balance["free"]["USDT"] == 1000.0
    stats = binance.stats
    assert stats.accepted >= 1
    assert stats.by_key == {KEY_V1: stats.accepted}
    assert stats.by_path["GET /api/v3/account"] == 1
    assert stats.rejected_auth == stats.rejected_mixed == 0


def test_binance_markets_include_spot_and_perpetual_btc_usdt(
    binance: BinanceEndpoint, make_client: ClientFactory
) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    markets = make_client("binance", binance).load_markets()
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "BTC/USD:BTC"} <= set(markets)


def test_binance_create_order_reaches_the_endpoint_exactly_once(
    binance: BinanceEndpoint, make_client: ClientFactory
) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    order = make_client("binance", binance).create_order("BTC/USDT", "market", "buy", 0.001)
    assert order["id"] == "1"
    assert order["status"] == "closed"
    assert binance.stats.by_path["POST /api/v3/order"] == 1
    (recorded,) = binance.orders
    assert recorded["symbol"] == "BTCUSDT"
    assert recorded["side"] == "BUY"
    assert "signature" not in recorded


def test_binance_rejects_revoked_key_with_auth_error(binance: BinanceEndpoint, make_client: ClientFactory) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    binance.revoke(KEY_V1)
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        make_client("binance", binance).fetch_balance()
    assert binance.stats.rejected_auth == 1


def test_binance_key_revoked_mid_session_surfaces_as_ddos_protection_in_ccxt(
    binance: BinanceEndpoint, make_client: ClientFactory
) -> None:
    # ccxt reads -2015 after an earlier success as a temporary ban: DDoSProtection, a
    # NetworkError, not AuthenticationError. Callers must not treat it as retry-safe noise.
    binance.allow(KEY_V1, SECRET_V1)
    client = make_client("binance", binance)
    client.fetch_balance()
    binance.revoke(KEY_V1)
    with pytest.raises(ccxt.DDoSProtection, match="-2015") as caught:
        client.fetch_balance()
    assert isinstance(caught.value, ccxt.NetworkError)
    assert not isinstance(caught.value, ccxt.AuthenticationError)
    assert binance.stats.rejected_auth == 1


def test_binance_unknown_key_is_401_code_2015(binance: BinanceEndpoint) -> None:
    response = binance_get(binance, "/api/v3/account", {"timestamp": now_ms()}, api_key="never-registered")
    assert response.status_code == 401
    assert response.json() == {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}


def test_binance_missing_api_key_header_is_401_code_2014(binance: BinanceEndpoint) -> None:
    response = requests.get(f"{binance.url}/api/v3/account?timestamp={now_ms()}&signature=00", timeout=5)
    assert response.status_code == 401
    assert response.json()["code"] == -2014


def test_binance_wrong_secret_is_signature_error_and_auth_error_in_ccxt(
    binance: BinanceEndpoint, make_client: ClientFactory
) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    raw = binance_get(binance, "/api/v3/account", {"timestamp": now_ms()}, secret="wrong")
    assert raw.status_code == 400
    assert raw.json() == {"code": -1022, "msg": "Signature for this request is not valid."}
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        make_client("binance", binance, secret="wrong").fetch_balance()


def test_binance_signature_error_message_contains_no_secret(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    raw = binance_get(binance, "/api/v3/account", {"timestamp": now_ms()}, secret="wrong")
    assert SECRET_V1 not in raw.text
    assert "wrong" not in raw.text


def test_binance_tampered_parameter_breaks_the_signature(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1", "timestamp": now_ms()})
    signature = binance_signature(SECRET_V1, query)
    tampered = query.replace("quantity=1", "quantity=9")
    response = requests.post(
        f"{binance.url}/api/v3/order?{tampered}&signature={signature}",
        headers={"X-MBX-APIKEY": KEY_V1},
        timeout=5,
    )
    assert response.json()["code"] == -1022
    assert binance.orders == ()


def test_binance_signature_covers_query_string_concatenated_with_body(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = f"quantity=1&price=0.1&recvWindow=5000&timestamp={now_ms()}"
    headers = {"X-MBX-APIKEY": KEY_V1, "Content-Type": "application/x-www-form-urlencoded"}

    def post(signed_text: str) -> requests.Response:
        signed_body = body + "&signature=" + binance_signature(SECRET_V1, signed_text)
        return requests.post(f"{binance.url}/api/v3/order?{query}", data=signed_body, headers=headers, timeout=5)

    # The docs' rule: totalParams is the query string and the body joined with no separator.
    assert post(query + "&" + body).json()["code"] == -1022
    accepted = post(query + body)
    assert accepted.status_code == 200
    assert accepted.json()["side"] == "BUY"


def test_binance_signature_hex_is_case_insensitive(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    query = urlencode({"timestamp": now_ms()})
    signature = binance_signature(SECRET_V1, query).upper()
    response = requests.get(
        f"{binance.url}/api/v3/account?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": KEY_V1},
        timeout=5,
    )
    assert response.status_code == 200


def test_binance_timestamp_outside_recv_window_is_invalid_nonce_not_auth(
    binance: BinanceEndpoint, make_client: ClientFactory
) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    binance.clock_offset_ms = 20_000  # ccxt sends recvWindow=10000
    with pytest.raises(ccxt.InvalidNonce, match="-1021") as caught:
        make_client("binance", binance).fetch_balance()
    assert not isinstance(caught.value, ccxt.AuthenticationError)
    assert binance.stats.rejected_timestamp == 1
    assert binance.stats.rejected_auth == 0


def test_binance_default_recv_window_is_5000_ms(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    stale = now_ms() - 7_000
    assert binance_get(binance, "/api/v3/account", {"timestamp": stale}).json()["code"] == -1021
    fresh_enough = binance_get(binance, "/api/v3/account", {"timestamp": stale, "recvWindow": 10_000})
    assert fresh_enough.status_code == 200


def test_binance_timestamp_1s_ahead_of_server_is_rejected(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    response = binance_get(binance, "/api/v3/account", {"timestamp": now_ms() + 3_000, "recvWindow": 60_000})
    assert response.status_code == 400
    assert response.json()["code"] == -1021
    assert "ahead" in response.json()["msg"]


def test_binance_recv_window_above_60000_is_rejected(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    response = binance_get(binance, "/api/v3/account", {"timestamp": now_ms(), "recvWindow": 60_001})
    assert response.json()["code"] == -1131


def test_binance_missing_timestamp_is_a_bad_request_not_auth(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    response = binance_get(binance, "/api/v3/account", {})
    assert response.json()["code"] == -1102
    assert binance.stats.rejected_auth == 0


# ======================================================================================
# KuCoin
# ======================================================================================


def test_kucoin_accepts_request_signed_with_registered_key(kucoin: KucoinEndpoint, make_client: ClientFactory) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    balance = make_client("kucoin", kucoin).fetch_balance()
    assert balance["free"] == {"BTC": 0.5, "USDT": 1000.0}
    assert kucoin.stats.by_path["GET /api/v1/accounts"] == 1
    assert kucoin.stats.rejected_auth == 0


def test_kucoin_create_order_reaches_the_endpoint_exactly_once(
    kucoin: KucoinEndpoint, make_client: ClientFactory
) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    order = make_client("kucoin", kucoin).create_order("BTC/USDT", "limit", "buy", 0.001, 50_000)
    assert order["id"]
    assert kucoin.stats.by_path["POST /api/v1/orders"] == 1
    (recorded,) = kucoin.orders
    assert recorded["symbol"] == "BTC-USDT"
    assert recorded["price"] == "50000"


def test_kucoin_wrong_passphrase_gets_kucoin_passphrase_error(
    kucoin: KucoinEndpoint, make_client: ClientFactory
) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    raw = requests.get(
        kucoin.url + "/api/v1/accounts",
        headers=kucoin_headers("GET", "/api/v1/accounts", passphrase="x"),
        timeout=5,
    )
    assert raw.status_code == 401
    assert raw.json() == {"code": "400004", "msg": "Invalid KC-API-PASSPHRASE"}
    with pytest.raises(ccxt.AuthenticationError, match="400004"):
        make_client("kucoin", kucoin, password="wrong").fetch_balance()


def test_kucoin_plain_text_passphrase_is_rejected_for_version_2_keys(kucoin: KucoinEndpoint) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    headers = kucoin_headers("GET", "/api/v1/accounts")
    headers["KC-API-PASSPHRASE"] = PASS_V1
    response = requests.get(kucoin.url + "/api/v1/accounts", headers=headers, timeout=5)
    assert response.json()["code"] == "400004"


def test_kucoin_bad_signature_gets_400005(kucoin: KucoinEndpoint) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    headers = kucoin_headers("GET", "/api/v1/accounts", secret="wrong", passphrase_secret=SECRET_V1)
    response = requests.get(kucoin.url + "/api/v1/accounts", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"code": "400005", "msg": "Invalid KC-API-SIGN"}


def test_kucoin_signature_covers_the_query_string(kucoin: KucoinEndpoint) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    without_query = kucoin_headers("GET", "/api/v1/accounts")
    response = requests.get(kucoin.url + "/api/v1/accounts?type=trade", headers=without_query, timeout=5)
    assert response.json()["code"] == "400005"
    with_query = kucoin_headers("GET", "/api/v1/accounts?type=trade")
    response = requests.get(kucoin.url + "/api/v1/accounts?type=trade", headers=with_query, timeout=5)
    assert response.json()["code"] == "200000"


def test_kucoin_signature_covers_the_json_body(kucoin: KucoinEndpoint) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    body = json.dumps({"clientOid": "c1", "side": "buy", "symbol": "BTC-USDT", "type": "market", "size": "1"})
    headers = kucoin_headers("POST", "/api/v1/orders", body)
    tampered = requests.post(kucoin.url + "/api/v1/orders", data=body.replace('"1"', '"9"'), headers=headers, timeout=5)
    assert tampered.json()["code"] == "400005"
    accepted = requests.post(kucoin.url + "/api/v1/orders", data=body, headers=headers, timeout=5)
    assert accepted.json()["code"] == "200000"
    assert len(kucoin.orders) == 1


def test_kucoin_unknown_key_gets_400003(kucoin: KucoinEndpoint) -> None:
    headers = kucoin_headers("GET", "/api/v1/accounts", api_key="never-registered")
    response = requests.get(kucoin.url + "/api/v1/accounts", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"code": "400003", "msg": "KC-API-KEY not exists"}


def test_kucoin_rejects_revoked_key_with_auth_error(kucoin: KucoinEndpoint, make_client: ClientFactory) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    client = make_client("kucoin", kucoin)
    client.fetch_balance()
    kucoin.revoke(KEY_V1)
    with pytest.raises(ccxt.AuthenticationError, match="400003"):
        client.fetch_balance()


def test_kucoin_missing_headers_get_400001(kucoin: KucoinEndpoint) -> None:
    response = requests.get(kucoin.url + "/api/v1/accounts", headers={"KC-API-KEY": KEY_V1}, timeout=5)
    assert response.json()["code"] == "400001"


def test_kucoin_timestamp_outside_5_seconds_is_invalid_nonce_not_auth(
    kucoin: KucoinEndpoint, make_client: ClientFactory
) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    raw = requests.get(
        kucoin.url + "/api/v1/accounts",
        headers=kucoin_headers("GET", "/api/v1/accounts", timestamp=now_ms() - 6_000),
        timeout=5,
    )
    assert raw.status_code == 400
    assert raw.json() == {"code": "400002", "msg": "Invalid KC-API-TIMESTAMP"}
    kucoin.clock_offset_ms = -6_000
    with pytest.raises(ccxt.InvalidNonce, match="400002") as caught:
        make_client("kucoin", kucoin).fetch_balance()
    assert not isinstance(caught.value, ccxt.AuthenticationError)
    assert kucoin.stats.rejected_timestamp == 2


# ======================================================================================
# Bitget
# ======================================================================================


def test_bitget_swap_fetch_balance_accepts_registered_key(bitget: BitgetEndpoint, make_client: ClientFactory) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    balance = make_client("bitget", bitget, defaultType="swap").fetch_balance()
    assert balance["free"]["USDT"] == 1000.0
    assert bitget.stats.by_path["GET /api/v2/mix/account/accounts"] == 1
    assert bitget.stats.rejected_auth == 0


def test_bitget_spot_fetch_balance_accepts_registered_key(bitget: BitgetEndpoint, make_client: ClientFactory) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    balance = make_client("bitget", bitget).fetch_balance()
    assert balance["free"] == {"BTC": 0.5, "USDT": 1000.0}


def test_bitget_create_swap_order_reaches_the_endpoint_exactly_once(
    bitget: BitgetEndpoint, make_client: ClientFactory
) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    order = make_client("bitget", bitget, defaultType="swap").create_order("BTC/USDT:USDT", "market", "buy", 0.001)
    assert order["id"]
    assert bitget.stats.by_path["POST /api/v2/mix/order/place-order"] == 1
    (recorded,) = bitget.orders
    assert recorded["productType"] == "USDT-FUTURES"


def test_bitget_wrong_passphrase_gets_40012_auth_error(bitget: BitgetEndpoint, make_client: ClientFactory) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    raw = requests.get(
        bitget.url + "/api/v2/spot/account/assets",
        headers=bitget_headers("GET", "/api/v2/spot/account/assets", passphrase="wrong"),
        timeout=5,
    )
    assert raw.status_code == 400
    assert raw.json()["code"] == "40012"
    assert raw.json()["msg"] == "apikey/password is incorrect"
    assert "wrong" not in raw.text
    with pytest.raises(ccxt.AuthenticationError, match="40012"):
        make_client("bitget", bitget, password="wrong", defaultType="swap").fetch_balance()


def test_bitget_bad_signature_gets_40009(bitget: BitgetEndpoint) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    headers = bitget_headers("GET", "/api/v2/spot/account/assets", secret="wrong")
    response = requests.get(bitget.url + "/api/v2/spot/account/assets", headers=headers, timeout=5)
    assert response.json()["code"] == "40009"


def test_bitget_signature_has_no_question_mark_without_query(bitget: BitgetEndpoint) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    ts = str(now_ms())
    prehash_with_mark = ts + "GET" + "/api/v2/spot/account/assets" + "?"
    sign = base64.b64encode(hmac.new(SECRET_V1.encode(), prehash_with_mark.encode(), hashlib.sha256).digest())
    headers = bitget_headers("GET", "/api/v2/spot/account/assets", timestamp=int(ts))
    headers["ACCESS-SIGN"] = sign.decode()
    response = requests.get(bitget.url + "/api/v2/spot/account/assets", headers=headers, timeout=5)
    assert response.json()["code"] == "40009"


def test_bitget_signature_covers_query_string(bitget: BitgetEndpoint) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    path, query = "/api/v2/mix/account/accounts", "productType=USDT-FUTURES"
    unsigned_query = bitget_headers("GET", path)
    assert requests.get(f"{bitget.url}{path}?{query}", headers=unsigned_query, timeout=5).json()["code"] == "40009"
    signed = bitget_headers("GET", path, query)
    assert requests.get(f"{bitget.url}{path}?{query}", headers=signed, timeout=5).json()["code"] == "00000"


def test_bitget_rejects_revoked_key_with_40006_auth_error(bitget: BitgetEndpoint, make_client: ClientFactory) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    client = make_client("bitget", bitget, defaultType="swap")
    client.fetch_balance()
    bitget.revoke(KEY_V1)
    with pytest.raises(ccxt.AuthenticationError, match="40006"):
        client.fetch_balance()


def test_bitget_missing_passphrase_gets_40011(bitget: BitgetEndpoint) -> None:
    headers = bitget_headers("GET", "/api/v2/spot/account/assets")
    del headers["ACCESS-PASSPHRASE"]
    response = requests.get(bitget.url + "/api/v2/spot/account/assets", headers=headers, timeout=5)
    assert response.json()["code"] == "40011"


def test_bitget_timestamp_outside_30_seconds_is_invalid_nonce_not_auth(
    bitget: BitgetEndpoint, make_client: ClientFactory
) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    bitget.clock_offset_ms = 31_000
    with pytest.raises(ccxt.InvalidNonce, match="40008") as caught:
        make_client("bitget", bitget, defaultType="swap").fetch_balance()
    assert not isinstance(caught.value, ccxt.AuthenticationError)
    assert bitget.stats.rejected_auth == 0
    assert bitget.stats.rejected_timestamp >= 1


def test_bitget_classic_account_turns_away_the_uta_probe_with_40084(bitget: BitgetEndpoint) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    headers = bitget_headers("GET", "/api/v3/account/settings")
    response = requests.get(bitget.url + "/api/v3/account/settings", headers=headers, timeout=5)
    assert response.json()["code"] == "40084"


# ======================================================================================
# mixed fields from two keys
# ======================================================================================


def test_request_mixing_two_keys_fields_is_counted_and_rejected(
    binance: BinanceEndpoint, make_client: ClientFactory
) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    binance.allow(KEY_V2, SECRET_V2)
    with pytest.raises(ccxt.AuthenticationError):
        make_client("binance", binance, api_key=KEY_V2, secret=SECRET_V1).fetch_balance()
    assert binance.stats.rejected_mixed == 1
    assert binance.stats.rejected_auth == 1


def test_two_live_keys_each_used_consistently_are_not_mixed(
    binance: BinanceEndpoint, make_client: ClientFactory
) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    binance.allow(KEY_V2, SECRET_V2)
    make_client("binance", binance, api_key=KEY_V1, secret=SECRET_V1).fetch_balance()
    make_client("binance", binance, api_key=KEY_V2, secret=SECRET_V2).fetch_balance()
    stats = binance.stats
    assert stats.rejected_mixed == stats.rejected_auth == 0
    assert set(stats.by_key) == {KEY_V1, KEY_V2}


def test_revoked_key_id_signed_with_the_new_secret_is_counted_as_mixed(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    binance.allow(KEY_V2, SECRET_V2)
    binance.revoke(KEY_V1)
    response = binance_get(binance, "/api/v3/account", {"timestamp": now_ms()}, api_key=KEY_V1, secret=SECRET_V2)
    assert response.json()["code"] == -2015
    assert binance.stats.rejected_mixed == 1


def test_revoked_key_used_whole_is_an_auth_rejection_but_not_mixed(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    binance.allow(KEY_V2, SECRET_V2)
    binance.revoke(KEY_V1)
    binance_get(binance, "/api/v3/account", {"timestamp": now_ms()})
    assert binance.stats.rejected_auth == 1
    assert binance.stats.rejected_mixed == 0


def test_a_wrong_secret_belonging_to_no_key_is_not_counted_as_mixed(binance: BinanceEndpoint) -> None:
    binance.allow(KEY_V1, SECRET_V1)
    binance.allow(KEY_V2, SECRET_V2)
    binance_get(binance, "/api/v3/account", {"timestamp": now_ms()}, secret="typo")
    assert binance.stats.rejected_auth == 1
    assert binance.stats.rejected_mixed == 0


def test_kucoin_passphrase_of_another_key_is_counted_as_mixed(kucoin: KucoinEndpoint) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    kucoin.allow(KEY_V2, SECRET_V2, PASS_V2)
    headers = kucoin_headers("GET", "/api/v1/accounts", api_key=KEY_V2, secret=SECRET_V2, passphrase=PASS_V1)
    response = requests.get(kucoin.url + "/api/v1/accounts", headers=headers, timeout=5)
    assert response.json()["code"] == "400004"
    assert kucoin.stats.rejected_mixed == 1


def test_kucoin_key_id_with_another_keys_secret_is_counted_as_mixed(
    kucoin: KucoinEndpoint, make_client: ClientFactory
) -> None:
    kucoin.allow(KEY_V1, SECRET_V1, PASS_V1)
    kucoin.allow(KEY_V2, SECRET_V2, PASS_V2)
    with pytest.raises(ccxt.AuthenticationError, match="400005"):
        make_client("kucoin", kucoin, api_key=KEY_V1, secret=SECRET_V2, password=PASS_V2).fetch_balance()
    assert kucoin.stats.rejected_mixed == kucoin.stats.rejected_auth == 1


def test_bitget_passphrase_of_another_key_is_counted_as_mixed(
    bitget: BitgetEndpoint, make_client: ClientFactory
) -> None:
    bitget.allow(KEY_V1, SECRET_V1, PASS_V1)
    bitget.allow(KEY_V2, SECRET_V2, PASS_V2)
    with pytest.raises(ccxt.AuthenticationError, match="40012"):
        make_client("bitget", bitget, api_key=KEY_V2, secret=SECRET_V2, password=PASS_V1).fetch_balance()
    # ccxt's UTA probe swallows its own 40012, so the balance call is the second mixed request.
    assert bitget.stats.rejected_mixed == bitget.stats.rejected_auth == 2


# ======================================================================================
# ccxt.async_support
# ======================================================================================


@pytest.mark.parametrize(
    ("exchange_id", "endpoint_class", "options", "currency"),
    [
        ("binance", BinanceEndpoint, {}, "BTC"),
        ("kucoin", KucoinEndpoint, {}, "BTC"),
        ("bitget", BitgetEndpoint, {"defaultType": "swap"}, "USDT"),
    ],
)
def test_async_ccxt_client_fetches_balance_and_closes_cleanly(
    exchange_id: str, endpoint_class: type[Any], options: dict[str, Any], currency: str
) -> None:
    async def fetch(url: str) -> Any:
        client = getattr(ccxt_async, exchange_id)(
            {
                "apiKey": KEY_V1,
                "secret": SECRET_V1,
                "password": PASS_V1,
                "enableRateLimit": False,
                "options": options,
            }
        )
        client.urls["api"] = rebase_urls(client.urls["api"], url)
        try:
            return await client.fetch_balance()
        finally:
            await client.close()

    with endpoint_class() as endpoint:
        endpoint.allow(KEY_V1, SECRET_V1, PASS_V1)
        balance = asyncio.run(fetch(endpoint.url))
        assert balance["free"][currency] > 0
        assert endpoint.stats.rejected_auth == 0


# ======================================================================================
# OpenAI
# ======================================================================================


@pytest.fixture
def openai_client(openai_endpoint: OpenAIEndpoint) -> Iterator[Callable[[str], openai.OpenAI]]:
    clients: list[openai.OpenAI] = []

    def make(api_key: str = OPENAI_KEY) -> openai.OpenAI:
        client = openai.OpenAI(base_url=openai_endpoint.url + "/v1", api_key=api_key, max_retries=0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def ask(client: openai.OpenAI, text: str = "hello from the unit tests") -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])


def test_openai_accepts_registered_key_and_answers_deterministically(
    openai_endpoint: OpenAIEndpoint, openai_client: Callable[[str], openai.OpenAI]
) -> None:
    openai_endpoint.allow(OPENAI_KEY)
    completion = openai_client(OPENAI_KEY).chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": "the last user message is this one"},
        ],
    )
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "ok: the last user messag"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert openai_endpoint.stats.accepted == 1


def test_openai_model_list_needs_a_valid_key(
    openai_endpoint: OpenAIEndpoint, openai_client: Callable[[str], openai.OpenAI]
) -> None:
    openai_endpoint.allow(OPENAI_KEY)
    assert "gpt-4o-mini" in [model.id for model in openai_client(OPENAI_KEY).models.list()]
    with pytest.raises(openai.AuthenticationError):
        openai_client("sk-not-registered-000000").models.list()


def test_openai_unknown_key_gets_401_invalid_api_key(openai_client: Callable[[str], openai.OpenAI]) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        ask(openai_client("sk-not-registered-abcdefgh1234"))
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert caught.value.type == "invalid_request_error"


def test_openai_401_message_masks_all_but_the_last_4_characters(
    openai_client: Callable[[str], openai.OpenAI],
) -> None:
    key = "sk-not-registered-abcdefgh1234"
    with pytest.raises(openai.AuthenticationError) as caught:
        ask(openai_client(key))
    message = str(caught.value)
    assert key not in message
    assert key[:-4] not in message
    assert mask_key(key) in message
    assert mask_key(key).endswith("1234")


def test_mask_key_hides_short_keys_completely() -> None:
    assert mask_key("sk-abc1234") == "*" * 10


def test_openai_revoked_key_is_rejected_at_once(
    openai_endpoint: OpenAIEndpoint, openai_client: Callable[[str], openai.OpenAI]
) -> None:
    openai_endpoint.allow(OPENAI_KEY)
    client = openai_client(OPENAI_KEY)
    ask(client)
    openai_endpoint.revoke(OPENAI_KEY)
    with pytest.raises(openai.AuthenticationError):
        ask(client)
    assert openai_endpoint.stats.rejected_auth == 1


def test_openai_missing_key_gets_401_without_code(openai_endpoint: OpenAIEndpoint) -> None:
    response = requests.post(
        openai_endpoint.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] is None


def test_openai_rate_limit_429_is_rate_limit_error_with_retry_after(
    openai_endpoint: OpenAIEndpoint, openai_client: Callable[[str], openai.OpenAI]
) -> None:
    openai_endpoint.allow(OPENAI_KEY)
    openai_endpoint.fail_next(1, "rate_limit")
    client = openai_client(OPENAI_KEY)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "1"
    ask(client)  # only the next request was failed
    assert openai_endpoint.stats.throttled == 1
    assert openai_endpoint.stats.accepted == 1


def test_openai_quota_429_is_rate_limit_error_told_apart_by_its_code(
    openai_endpoint: OpenAIEndpoint, openai_client: Callable[[str], openai.OpenAI]
) -> None:
    openai_endpoint.allow(OPENAI_KEY)
    openai_endpoint.fail_next(1, "insufficient_quota")
    with pytest.raises(openai.RateLimitError) as caught:
        ask(openai_client(OPENAI_KEY))
    assert caught.value.status_code == 429
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"
    assert "retry-after" not in caught.value.response.headers


def test_openai_forced_failure_lasts_until_cleared(
    openai_endpoint: OpenAIEndpoint, openai_client: Callable[[str], openai.OpenAI]
) -> None:
    openai_endpoint.allow(OPENAI_KEY)
    client = openai_client(OPENAI_KEY)
    openai_endpoint.force("insufficient_quota")
    for _ in range(3):
        with pytest.raises(openai.RateLimitError):
            ask(client)
    openai_endpoint.force(None)
    assert ask(client).choices[0].message.content == "ok: hello from the unit "


def test_openai_forced_failures_come_after_authentication(
    openai_endpoint: OpenAIEndpoint, openai_client: Callable[[str], openai.OpenAI]
) -> None:
    openai_endpoint.force("rate_limit")
    with pytest.raises(openai.AuthenticationError):
        ask(openai_client("sk-not-registered-abcdefgh1234"))


def test_openai_server_error_is_internal_server_error(
    openai_endpoint: OpenAIEndpoint, openai_client: Callable[[str], openai.OpenAI]
) -> None:
    openai_endpoint.allow(OPENAI_KEY)
    openai_endpoint.fail_next(1, "server_error")
    with pytest.raises(openai.InternalServerError):
        ask(openai_client(OPENAI_KEY))


def test_openai_request_without_messages_is_a_400(openai_endpoint: OpenAIEndpoint) -> None:
    openai_endpoint.allow(OPENAI_KEY)
    response = requests.post(
        openai_endpoint.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini"},
        headers={"Authorization": f"Bearer {OPENAI_KEY}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


def test_openai_stats_by_key_masks_the_key(
    openai_endpoint: OpenAIEndpoint, openai_client: Callable[[str], openai.OpenAI]
) -> None:
    openai_endpoint.allow(OPENAI_KEY)
    ask(openai_client(OPENAI_KEY))
    assert openai_endpoint.stats.by_key == {mask_key(OPENAI_KEY): 1}
