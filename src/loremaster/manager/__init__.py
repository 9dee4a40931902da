"""The manager: `ContextManager` (the facade), the wiring of settings to services, the one
writer, the reader, the operations each public method hands to, maintenance and metrics.
"""

from ._facade import ContextManager
from ._idempotency import Idempotency, StoredResponse
from ._versions import MergeStrategy

__all__ = ["ContextManager", "Idempotency", "MergeStrategy", "StoredResponse"]
