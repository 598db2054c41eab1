"""Tests that need a tool outside Python (promtool, a compose client, chromium)."""

import os

import pytest


def requires_tool(found: bool, what: str) -> pytest.MarkDecorator:
    """Skip on a developer's machine without the tool; under `make test` (and so CI), which
    installs every tool, a missing one stops the run instead of passing silently as a skip."""
    if not found and (os.environ.get("CI") or os.environ.get("DBARCHITECT_TEST_TOOLS") == "1"):
        raise RuntimeError(f"{what} is missing; `make test` should have installed it")
    return pytest.mark.skipif(not found, reason=f"{what} is not installed")
