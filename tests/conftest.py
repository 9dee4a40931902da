from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Timing is noise on a shared 2-core machine: judge properties, not how fast examples come.
settings.register_profile("loremaster", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("loremaster")

from loremaster import ContextManager


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "loremaster.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    return f"sqlite:///{db_path}"


@pytest.fixture
async def manager(db_url: str) -> AsyncIterator[ContextManager]:
    async with ContextManager(database_url=db_url) as cm:
        yield cm
