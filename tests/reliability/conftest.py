"""Fault-injection tests: every test here carries the ``reliability`` marker, so
``pytest -m reliability`` runs them alone and ``-m "not reliability"`` skips them."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)
