"""loremaster: durable, versioned, shareable context for LLM applications.

from loremaster import ContextManager, ConversationContext

async with ContextManager() as cm:          # embedded SQLite file ./loremaster.db
    context_id = await cm.create_context(ConversationContext(title="Session 1"))
"""

from ._version import __version__
from .config import Settings
from .errors import (
    BackendUnavailable,
    ConfigurationError,
    ContextNotFound,
    DataCorrupted,
    Issue,
    LockHeld,
    LoremasterError,
    NotInitialized,
    PayloadTooLarge,
    PermissionDenied,
    RevisionConflict,
    UnsupportedFormat,
    UntrustedPayload,
    UsageError,
    ValidationFailed,
)
from .manager import ContextManager
from .models import (
    CollaborativeContext,
    Context,
    ContextEvent,
    ContextPage,
    ContextQuery,
    ContextState,
    ContextType,
    ConversationContext,
    DocumentPart,
    ImagePart,
    Message,
    MessageRole,
    Permission,
    ProviderType,
    SearchHit,
    SessionContext,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = [
    "BackendUnavailable",
    "CollaborativeContext",
    "ConfigurationError",
    "Context",
    "ContextEvent",
    "ContextManager",
    "ContextNotFound",
    "ContextPage",
    "ContextQuery",
    "ContextState",
    "ContextType",
    "ConversationContext",
    "DataCorrupted",
    "DocumentPart",
    "ImagePart",
    "Issue",
    "LockHeld",
    "LoremasterError",
    "Message",
    "MessageRole",
    "NotInitialized",
    "PayloadTooLarge",
    "Permission",
    "PermissionDenied",
    "ProviderType",
    "RevisionConflict",
    "SearchHit",
    "SessionContext",
    "Settings",
    "TextPart",
    "ThinkingPart",
    "ToolCallPart",
    "ToolResultPart",
    "UnsupportedFormat",
    "UntrustedPayload",
    "UsageError",
    "ValidationFailed",
    "__version__",
]
