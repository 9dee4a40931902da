"""Translation: conversations to and from Anthropic, OpenAI and Gemini request formats.

    from loremaster.translation import ContextTranslator

    translator = ContextTranslator()
    result = translator.to_provider(messages, "anthropic", model="claude-sonnet-4-5")
    result.payload          # {"system": ..., "messages": [...]}, ready for the API
    print(result.report)    # everything converted, moved, merged, added or dropped
    back = translator.from_provider(result.payload, "anthropic")   # == result.messages

Provider-only details (signatures, cache_control, raw argument strings, Gemini thought
signatures) live in each part's ``provider_data`` under the provider's name and go back
only to that provider. Token counts are exact for OpenAI's encodings and calibrated
estimates for Claude and Gemini; nothing is downloaded. See docs/translation.md.
"""

from ..models import register_message_reader
from ._adapt import PLACEHOLDER_TEXT, SKIP_SIGNATURE, safe_id
from ._provider_migration import (
    ExportCache,
    MigrationPlan,
    Outcome,
    check_window,
    export_payload,
    parse_migration,
    parse_provider,
    translate_conversation,
)
from ._registry import BUILT_IN_MODELS, PROVIDER_DEFAULTS, ModelInfo, ModelRegistry
from ._report import CHANGE_CODES, Action, Change, TranslationReport, TranslationResult
from ._shapes import detect, message_source, read_provider_messages
from ._tokens import TokenCount, image_size
from ._translator import ContextTranslator, MessagesIn, ProviderIn
from ._validate import validate_payload
from ._window import FitStrategy, Summarizer, WindowFit

__all__ = [
    "BUILT_IN_MODELS",
    "CHANGE_CODES",
    "PLACEHOLDER_TEXT",
    "PROVIDER_DEFAULTS",
    "SKIP_SIGNATURE",
    "Action",
    "Change",
    "ContextTranslator",
    "ExportCache",
    "FitStrategy",
    "MessagesIn",
    "MigrationPlan",
    "ModelInfo",
    "ModelRegistry",
    "Outcome",
    "ProviderIn",
    "Summarizer",
    "TokenCount",
    "TranslationReport",
    "TranslationResult",
    "WindowFit",
    "check_window",
    "detect",
    "export_payload",
    "image_size",
    "message_source",
    "parse_migration",
    "parse_provider",
    "safe_id",
    "translate_conversation",
    "validate_payload",
]

# Provider-shaped messages are accepted wherever messages are (models cannot import us).
register_message_reader(read_provider_messages)
