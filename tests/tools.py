"""Tests that need a tool outside Python (promtool, a compose client, chromium)."""

import os

import pytest


def requires_tool(found: bool, what: str) -> pytest.MarkDecorator:
    """Skip on a developer's machine without the tool; under CI, where `make test` installs
    every tool, a missing one stops the run instead of passing silently as a skip."""
    if not found and os.environ.get("CI"):
        raise RuntimeError(f"CI is missing {what}; `make test` should have installed it")
    return pytest.mark.skipif(not found, reason=f"{what} is not installed")
