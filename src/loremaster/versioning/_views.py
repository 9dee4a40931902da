"""Which stored messages a branch or version sees: a view is a list of pieces.

Messages live in append-only segments keyed (segment, seq). A branch appends to its own
segment; what came before its fork (or its last rollback) is a list of closed pieces of
other segments. A piece ``(segment, end)`` holds that segment's messages after the
previous piece's end, up to and including ``end``. Pure functions.
"""

from __future__ import annotations

from ..storage import Piece, VersionState

__all__ = ["common_prefix", "cut", "ranges", "view_of"]


def view_of(state: VersionState, message_count: int) -> tuple[Piece, ...]:
    """The pieces that make up a branch's first `message_count` messages."""
    pieces = list(state.lineage)
    start = pieces[-1][1] if pieces else 0
    if message_count > start:
        pieces.append((state.segment, message_count))
    return tuple(pieces)


def cut(view: tuple[Piece, ...], count: int) -> tuple[Piece, ...]:
    """The pieces of a view's first `count` messages."""
    pieces: list[Piece] = []
    start = 0
    for segment, end in view:
        if end >= count:
            if count > start:
                pieces.append((segment, count))
            break
        pieces.append((segment, end))
        start = end
    return tuple(pieces)


def ranges(view: tuple[Piece, ...]) -> list[tuple[str, int, int]]:
    """(segment, after seq, up to seq) for each piece, oldest first."""
    spans: list[tuple[str, int, int]] = []
    start = 0
    for segment, end in view:
        spans.append((segment, start, end))
        start = end
    return spans


def shows(view: tuple[Piece, ...], segment: str, seq: int) -> bool:
    """Whether the view holds message `seq` of `segment` (at that position)."""
    return any(s == segment and start < seq <= end for s, start, end in ranges(view))


def common_prefix(a: tuple[Piece, ...], b: tuple[Piece, ...]) -> int:
    """How many leading messages two views share (the same stored messages)."""
    shared = 0
    for (segment_a, end_a), (segment_b, end_b) in zip(a, b, strict=False):
        if segment_a != segment_b:
            break
        shared = min(end_a, end_b)
        if end_a != end_b:
            break
    return shared
