"""Versioning: versions stored as snapshots or JSON Patches, message views, cleanup.

Pure functions over storage records; the manager runs them inside its transactions.
"""

from ._prune import VersionLimits, choose_victims, prune_plan
from ._store import (
    VersionPolicy,
    VersionRequest,
    apply_patch,
    decode_payload,
    make_version,
    reconstruct,
    track_change,
    version_checksum,
)
from ._views import common_prefix, ranges, shows, view_of

__all__ = [
    "VersionLimits",
    "VersionPolicy",
    "VersionRequest",
    "apply_patch",
    "choose_victims",
    "common_prefix",
    "decode_payload",
    "make_version",
    "prune_plan",
    "ranges",
    "reconstruct",
    "shows",
    "track_change",
    "version_checksum",
    "view_of",
]
