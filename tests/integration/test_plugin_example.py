"""What a user's own test looks like: only the public credbroker.testing fixtures, no Vault of their own.

This is the README example, kept running so it cannot rot.
"""

from __future__ import annotations

from typing import Any


class MyBot:
    """A stand-in trading module: it asks the broker for its exchange on every unit of work."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def exchange(self) -> Any:
        return self.broker.exchange("binance")


def test_my_bot_survives_a_rotation(credbroker_vault: Any) -> None:
    credbroker_vault.put("binance", {"apiKey": "key-one-0001", "secret": "secret-one-0001"})
    broker = credbroker_vault.broker()
    bot = MyBot(broker)
    assert bot.exchange().apiKey == "key-one-0001"
    credbroker_vault.rotate("binance", {"apiKey": "key-two-0002", "secret": "secret-two-0002"})
    credbroker_vault.wait_until_served(broker, "binance", version=2)
    assert bot.exchange().apiKey == "key-two-0002"
