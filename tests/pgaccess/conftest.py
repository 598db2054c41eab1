from pathlib import Path

import pytest

from .servers import pg15_bindir


@pytest.fixture(scope="session")
def bindir() -> Path:
    return pg15_bindir()
