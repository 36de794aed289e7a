"""Shared set-up for the on-the-wire tests: endpoints started once per module, credentials per test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from credbroker.testing.endpoints import BinanceEndpoint, BitgetEndpoint, KucoinEndpoint, OpenAIEndpoint
from credbroker.testing.plugin import VaultSandbox

EXCHANGES = ("binance", "kucoin", "bitget")
OPTIONS: dict[str, dict[str, Any]] = {"bitget": {"defaultType": "swap"}}
NEEDS_PASSPHRASE = {"kucoin", "bitget"}


@dataclass
class Endpoints:
    binance: BinanceEndpoint
    kucoin: KucoinEndpoint
    bitget: BitgetEndpoint
    openai: OpenAIEndpoint

    def for_exchange(self, name: str) -> Any:
        return getattr(self, name)

    def stop(self) -> None:
        for ep in (self.binance, self.kucoin, self.bitget, self.openai):
            ep.stop()


def start_endpoints() -> Endpoints:
    return Endpoints(
        BinanceEndpoint().start(), KucoinEndpoint().start(), BitgetEndpoint().start(), OpenAIEndpoint().start()
    )


def new_fields(name: str, canary: Callable[[], str]) -> dict[str, str]:
    fields = {"apiKey": canary(), "secret": canary()}
    if name in NEEDS_PASSPHRASE:
        fields["password"] = canary()
    return fields


def allow(endpoints: Endpoints, name: str, fields: dict[str, str]) -> None:
    endpoints.for_exchange(name).allow(fields["apiKey"], fields["secret"], fields.get("password"))


def put_exchange(vault: VaultSandbox, endpoints: Endpoints, name: str, canary: Callable[[], str]) -> dict[str, str]:
    """Store a fresh key for ``name`` in Vault, valid at its endpoint, and configure the exchange to use it."""
    fields = new_fields(name, canary)
    allow(endpoints, name, fields)
    vault.put(name, fields, api_base=endpoints.for_exchange(name).url, options=OPTIONS.get(name, {}))
    return fields
