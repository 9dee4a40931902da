"""Calls: recording each call an application makes to Claude, GPT or Gemini into its
context, and falling back from one provider to the next.

`record_client` wraps the application's own SDK client (``anthropic.AsyncAnthropic``,
``openai.AsyncOpenAI``, ``google.genai.Client``): the same client, whose calls each store
the request's new messages and the reply, with the call's record (models, usage,
latency, cost, error; named after the OpenTelemetry GenAI conventions) in the reply's
``metadata["call"]``. Streams are watched, not slowed: recorded once they end. The
manager stores what it records (`CallSink`) and wires translation in (`Translator`): a
service never imports another. See docs/calls.md.
"""

from ._clients import Caller, caller_of, record_client
from ._facts import (
    Finished,
    Reply,
    Request,
    Timing,
    Usage,
    call_attributes,
    call_record,
    describe_error,
)
from ._history import Fingerprint, HistoryPlan, fingerprint, plan_history
from ._ports import PricedModel, Translator
from ._recorder import (
    CallRecorder,
    CallSink,
    OnRecordError,
    check_on_record_error,
    cost_of,
)
from ._store import (
    RecordCall,
    SentMessages,
    StoredHistoryChanged,
    call_messages,
    call_row,
    with_call,
)
from ._tap import StreamTap

__all__ = [
    "CallRecorder",
    "CallSink",
    "Caller",
    "Fingerprint",
    "Finished",
    "HistoryPlan",
    "OnRecordError",
    "PricedModel",
    "RecordCall",
    "Reply",
    "Request",
    "SentMessages",
    "StoredHistoryChanged",
    "StreamTap",
    "Timing",
    "Translator",
    "Usage",
    "call_attributes",
    "call_messages",
    "call_record",
    "call_row",
    "caller_of",
    "check_on_record_error",
    "cost_of",
    "describe_error",
    "fingerprint",
    "plan_history",
    "record_client",
    "with_call",
]
