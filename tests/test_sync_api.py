"""The public names of `loremaster.bus` and `loremaster.sync`: exactly what `__all__` says."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from loremaster import bus, sync


@pytest.mark.parametrize("package", [bus, sync], ids=lambda p: p.__name__)
def test_all_is_complete_and_nothing_else_is_public(package: ModuleType) -> None:
    exported = package.__all__
    assert len(set(exported)) == len(exported)
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(exported)
