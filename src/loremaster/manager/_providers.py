"""Providers: migrating a conversation to another provider's format, and exporting it as
a provider's request body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..document import canonical_id, message_record
from ..errors import ConfigurationError
from ..models import MigrationResult, ProviderType
from ..translation import (
    check_window,
    export_payload,
    parse_migration,
    parse_provider,
    translate_conversation,
)
from ..versioning import CreateVersion, Rewrite, VersionRequest
from . import _arguments as arg
from ._contexts import Contexts
from ._wiring import Core

__all__ = ["Providers"]


class Providers:
    def __init__(self, core: Core, contexts: Contexts) -> None:
        self._core = core
        self._contexts = contexts

    async def migrate(
        self,
        context_id: str,
        from_provider: ProviderType | str | None,
        to_provider: ProviderType | str | None,
        options: Mapping[str, Any] | None,
        *,
        user_id: str | None,
        branch: str,
        lock_token: int | None,
    ) -> MigrationResult:
        if not self._core.settings.enable_translation:
            raise ConfigurationError(
                "provider migration is turned off (CONTEXT_ENABLE_TRANSLATION=false)"
            )
        context_id = canonical_id(context_id)
        plan = parse_migration(from_provider, to_provider, options)
        token = arg.lock_token(lock_token, arg.user(user_id))
        context = await self._contexts.get(
            context_id, user_id, messages=True, deleted=False, branch=branch
        )
        outcome = translate_conversation(self._core.translator, context, plan)
        if not outcome.result.migrated:
            return outcome.result
        versioning, writer = self._core.versioning, self._core.writer
        target = plan.target.value
        checkpoint = CreateVersion(
            VersionRequest(user_id, f"before migration to {target}", ("migration",)),
            branch,
            versioning,
            expected_revision=context.revision,  # what was translated is still current
        )
        before = await writer.commit(
            context_id, checkpoint, user_id=user_id, branch=branch, lock_token=token
        )
        rows = None
        if outcome.messages is not None:
            bodies = self._core.bodies
            rows = [
                message_record(message, seq, bodies)[0]
                for seq, message in enumerate(outcome.messages, start=1)
            ]
        rewrite = Rewrite(
            op="migrate",
            ops=outcome.ops,
            messages=rows,
            message_values=outcome.message_values,
            expected_revision=before.record.revision,
            request=VersionRequest(user_id, f"migrated to {target}", ("migration",)),
            branch=branch,
            versioning=versioning,
        )
        after = await writer.commit(
            context_id, rewrite, user_id=user_id, branch=branch, lock_token=token
        )
        return outcome.result.model_copy(
            update={
                "revision": after.record.revision,
                "version_before": before.record.versioning.head,
                "version_after": after.record.versioning.head,
            }
        )

    async def export(
        self,
        context_id: str,
        provider: ProviderType | str,
        user_id: str | None,
        model: str | None,
        *,
        branch: str,
        fit: bool,
        reserve_output: int | None,
    ) -> dict[str, Any]:
        context_id = canonical_id(context_id)
        target = parse_provider(provider, "provider")
        check_window(model, reserve_output)
        reader = self._core.reader
        record = await reader.on_branch(await reader.readable(context_id, user_id), branch)
        key = (context_id, branch, record.revision, target, model, fit, reserve_output)
        cached = self._core.exports.get(key)
        if cached is not None:
            return cached
        payload = export_payload(
            self._core.translator,
            await reader.messages(record),
            target,
            model,
            fit=fit,
            reserve_output=reserve_output,
        )
        self._core.exports.put(key, payload)
        return payload
