"""Versioning: versions stored as snapshots or JSON Patches, message views, branches,
merges and cleanup.

The changes versioning makes (`CreateVersion`, `Rollback`, `CreateBranch`, `Merge`,
`Rewrite`) and its bookkeeping on every change (`Versioning.track`) are pure: the
manager's writer runs them inside its transactions. `History` is the I/O shell that
reads versions, branches and message views.
"""

from ._history import History, branch_model, version_model
from ._plans import (
    CreateBranch,
    CreateVersion,
    ForkPoint,
    Merge,
    Rewrite,
    Rollback,
    Versioning,
    branch_document,
    branch_view,
)
from ._prune import VersionLimits, choose_victims, prune_plan
from ._store import (
    VersionPolicy,
    VersionRequest,
    decode_payload,
    make_version,
    reconstruct,
    track_change,
    version_checksum,
)
from ._views import common_prefix, cut, ranges, shows, view_of

__all__ = [
    "CreateBranch",
    "CreateVersion",
    "ForkPoint",
    "History",
    "Merge",
    "Rewrite",
    "Rollback",
    "VersionLimits",
    "VersionPolicy",
    "VersionRequest",
    "Versioning",
    "branch_document",
    "branch_model",
    "branch_view",
    "choose_victims",
    "common_prefix",
    "cut",
    "decode_payload",
    "make_version",
    "prune_plan",
    "ranges",
    "reconstruct",
    "shows",
    "track_change",
    "version_checksum",
    "version_model",
    "view_of",
]
