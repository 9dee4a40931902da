"""The shared vocabulary: contexts, messages, queries and events (pydantic v2)."""

from ._contexts import (
    CollaborativeContext,
    Context,
    ContextState,
    ContextType,
    ConversationContext,
    Permission,
    ProviderType,
    SessionContext,
    context_class,
    count_turns,
)
from ._messages import (
    DocumentPart,
    ImagePart,
    Message,
    MessageRole,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from ._query import CleanupReport, ContextEvent, ContextPage, ContextQuery, OrderBy, SearchHit
from ._time import UtcDatetime, from_micros, to_micros, utc_now

__all__ = [
    "CleanupReport",
    "CollaborativeContext",
    "Context",
    "ContextEvent",
    "ContextPage",
    "ContextQuery",
    "ContextState",
    "ContextType",
    "ConversationContext",
    "DocumentPart",
    "ImagePart",
    "Message",
    "MessageRole",
    "OrderBy",
    "Part",
    "Permission",
    "ProviderType",
    "SearchHit",
    "SessionContext",
    "TextPart",
    "ThinkingPart",
    "ToolCallPart",
    "ToolResultPart",
    "UtcDatetime",
    "context_class",
    "count_turns",
    "from_micros",
    "to_micros",
    "utc_now",
]
