from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

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
