"""The benchmark's own logic (scripts/bench), without Vault and without timing thresholds.

CI runs ``scripts/bench --quick`` for the real thing; these pin down the parts that decide what the numbers mean.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

# benchmarks/ is a top-level folder next to credbroker/, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.bench import (
    AuditLog,
    Row,
    _audit_time,
    bare_single_flight,
    enforced_failures,
    pct,
    run_herd,
)


def test_p99_is_nearest_rank() -> None:
    assert pct(list(range(1, 101)), 99) == 99
    assert pct([7.0], 99) == 7.0
    assert pct([3, 1, 2], 50) == 2


def test_audit_time_keeps_nanoseconds_and_is_utc() -> None:
    expected = datetime(2026, 12, 3, 16, 0, 29, tzinfo=UTC).timestamp() + 0.616843003
    assert _audit_time("2026-12-03T16:00:29.616843003Z") == pytest.approx(expected, abs=1e-6)


def test_audit_log_skips_a_line_still_being_written(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    read = {"type": "request", "request": {"path": "kv/data/a", "operation": "read"}}
    answer = {"type": "response", "request": {"path": "kv/data/a", "operation": "read"}}
    log.write_text(json.dumps(read) + "\n" + json.dumps(answer) + "\n" + '{"type": "requ')
    entries = AuditLog(log).entries(0)
    assert len(entries) == 2
    assert len(AuditLog.requests(entries, path="kv/data/a", operation="read")) == 1


def _row(passed: bool | None, *, functional: bool) -> Row:
    return Row("x", "m", "what", 1.0, "ms", passed=passed, functional=functional)


def test_quick_run_fails_only_on_functional_targets() -> None:
    timing_miss, functional_miss = _row(False, functional=False), _row(False, functional=True)
    rows = [timing_miss, functional_miss, _row(True, functional=True), _row(None, functional=False)]
    assert enforced_failures(rows, quick=True) == [functional_miss]
    assert enforced_failures(rows, quick=False) == [timing_miss, functional_miss]


def test_herd_harness_runs_the_fetch_once_and_hands_everyone_its_result() -> None:
    fetches: list[int] = []

    def fetch() -> object:
        fetches.append(threading.get_ident())
        return object()

    waits, got, idents = run_herd(16, bare_single_flight(fetch))
    assert len(fetches) == 1
    assert len({id(g) for g in got}) == 1
    assert len(waits) == len(set(idents)) == 16
