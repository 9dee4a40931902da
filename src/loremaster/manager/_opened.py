"""The parts of a manager that reach storage do so once it is initialized."""

from __future__ import annotations

from collections.abc import Callable

from ..storage import Storage

__all__ = ["OnStorage"]


class OnStorage:
    """A part of the manager given its storage as `Core.storage` is: `NotInitialized`
    until the manager is initialized."""

    def __init__(self, storage: Callable[[], Storage]) -> None:
        self._open_storage = storage

    @property
    def _storage(self) -> Storage:
        return self._open_storage()
