"""The public surface: one __init__, a sorted and complete __all__."""

from __future__ import annotations

import credbroker
from credbroker import exceptions


def test_all_is_sorted() -> None:
    assert credbroker.__all__ == sorted(credbroker.__all__)


def test_every_public_name_is_exported() -> None:
    # '@py_builtins' and friends are pytest's assertion-rewriting helpers, not our names.
    public = {
        n
        for n in dir(credbroker)
        if not n.startswith(("_", "@")) and n not in {"exceptions", "testing", "cli", "metrics", "annotations"}
    }
    public |= {"__version__"}
    assert public <= set(credbroker.__all__)
    for name in credbroker.__all__:
        assert hasattr(credbroker, name), name


def test_every_exception_is_exported_and_derives_from_the_base() -> None:
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, credbroker.CredbrokerError)
        assert getattr(credbroker, name) is cls


def test_version_comes_from_package_metadata() -> None:
    from importlib.metadata import version

    assert credbroker.__version__ == version("credbroker")


def test_importing_credbroker_does_not_import_ccxt_or_openai() -> None:
    import subprocess
    import sys

    code = "import sys, credbroker; print(sorted(m for m in ('ccxt', 'openai', 'hvac') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
