"""Which SDK a client is, found without importing the SDKs loremaster does not need: each
provider's module (and its SDK) is imported only once a client of it is given."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import Issue, ValidationFailed
from ..models import ProviderType
from ._facts import Reply
from ._recorder import CallRecorder

__all__ = ["Caller", "caller_of", "record_client"]

_MODULES = {"anthropic": "._anthropic", "openai": "._openai", "google": "._google"}
_OPERATIONS = {
    ProviderType.ANTHROPIC: "chat",
    ProviderType.OPENAI: "chat",
    ProviderType.GOOGLE: "generate_content",
}


@dataclass(frozen=True, slots=True)
class Caller:
    """How `complete` calls one provider: the request for a conversation, a streamed
    call, the reply its items make, and which failures another provider may follow."""

    provider: ProviderType
    operation: str
    request_body: Callable[[Mapping[str, Any], str, Mapping[str, Any], int], dict[str, Any]]
    open_stream: Callable[
        [Any, Mapping[str, Any]], Awaitable[tuple[AsyncIterator[Any], str | None]]
    ]
    read_stream: Callable[[list[Any]], Reply]
    is_transient: Callable[[BaseException], bool]


def _module(client: Any) -> Any:
    root = type(client).__module__.split(".")[0]
    name = _MODULES.get(root)
    if name is None or isinstance(client, type):
        why = (
            "a client is an anthropic.AsyncAnthropic, an openai.AsyncOpenAI or a "
            f"google.genai.Client, not {type(client).__name__}"
        )
        raise ValidationFailed(why, [Issue("/client", why, "client.unsupported")])
    return importlib.import_module(name, __package__)


def record_client(client: Any, recorder: CallRecorder) -> Any:
    """The application's client, recorded (see `ContextManager.record_calls`)."""
    return _module(client).wrap(client, recorder)


def caller_of(client: Any) -> Caller:
    """How `complete` calls this client's provider. A recorded client is refused: its
    calls would be recorded twice, and into its own context."""
    if isinstance(getattr(client, "__dict__", {}).get("loremaster"), CallRecorder):
        why = "complete() takes the SDK's own client, not one record_calls returned"
        raise ValidationFailed(why, [Issue("/providers", why, "client.recorded")])
    module = _module(client)
    module.check(client)
    provider: ProviderType = module.PROVIDER
    return Caller(
        provider=provider,
        operation=_OPERATIONS[provider],
        request_body=module.request_body,
        open_stream=module.open_stream,
        read_stream=module.read_stream,
        is_transient=module.is_transient,
    )
