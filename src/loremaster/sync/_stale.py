"""What a stale update is merged against: the document at the revision its writer read,
and the changes committed since, with who wrote them. An I/O shell over storage.

The base is rebuilt from the newest version at or before that revision, plus the events
after it (the events' JSON Patches are exactly what each change applied to the fields).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..document import PROTECTED_FIELDS, field_ops
from ..errors import RevisionConflict
from ..models import UpdateOrigin
from ..patch import apply_stored_patch
from ..storage import EventRecord, Storage, VersionRecord
from ._strategies import PathChange

__all__ = ["StaleBase", "VersionDocuments"]

_PAGE = 200


class VersionDocuments(Protocol):
    """Reads a version's fields (versioning's history, wired by the manager)."""

    async def version(
        self, context_id: str, version_id: str
    ) -> tuple[VersionRecord, dict[str, Any]]: ...


def _origin(event: EventRecord) -> UpdateOrigin:
    return UpdateOrigin(user_id=event.user_id or "system", provider=event.provider)


class StaleBase:
    """The base document of a stale update and the changes since it."""

    def __init__(self, storage: Storage, versions: VersionDocuments) -> None:
        self._storage = storage
        self._versions = versions

    async def load(
        self, context_id: str, branch: str, base_revision: int, current_revision: int
    ) -> tuple[dict[str, Any], list[PathChange]]:
        """(the fields at `base_revision`, the changes after it up to `current_revision`);
        `RevisionConflict` when history no longer reaches back that far."""
        found = await self._document_before(context_id, branch, base_revision)
        if found is None:
            raise RevisionConflict(context_id, base_revision, current_revision)
        document, start = found
        events = await self._storage.load_events(
            context_id, since_revision=start, limit=current_revision - start
        )
        mine = [e for e in events if e.branch == branch]
        for event in mine:
            if event.revision > base_revision:
                break
            document = apply_stored_patch(document, field_ops(event.changes))
        since = [
            PathChange(_origin(e), field_ops(e.changes)) for e in mine if e.revision > base_revision
        ]
        if [e.revision for e in events] != list(range(start + 1, current_revision + 1)):
            raise RevisionConflict(context_id, base_revision, current_revision)  # trimmed
        return document, since

    async def _document_before(
        self, context_id: str, branch: str, revision: int
    ) -> tuple[dict[str, Any], int] | None:
        before: int | None = None
        while True:
            page = await self._storage.list_versions(
                context_id, branch=branch, before_number=before, limit=_PAGE
            )
            found = next((v for v in page if v.revision <= revision), None)
            if found is not None:
                _, document = await self._versions.version(context_id, found.version_id)
                return document, found.revision
            if len(page) < _PAGE:
                break
            before = page[-1].number
        if branch != "main":  # a branch with no version of its own yet: its fork point
            row = await self._storage.load_branch(context_id, branch)
            if row is not None and row.base_version is not None:
                fork, document = await self._versions.version(context_id, row.base_version)
                if fork.revision <= revision:
                    return document, fork.revision
        return await self._created(context_id, branch)

    async def _created(self, context_id: str, branch: str) -> tuple[dict[str, Any], int] | None:
        first = await self._storage.load_events(context_id, since_revision=0, limit=1)
        if branch != "main" or not first or first[0].revision != 1 or first[0].op != "create":
            return None
        value: dict[str, Any] = first[0].changes[0]["value"]
        skip = PROTECTED_FIELDS | {"message_count", "turn_count"}
        return {k: v for k, v in value.items() if k not in skip}, 1
