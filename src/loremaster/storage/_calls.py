"""The calls table, once for both backends: recorded calls to AI providers, their
statements and their rows (see migration 0011)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ._dialect import Dialect
from ._rows import Row, dumps
from ._types import CallRecord

__all__ = ["CallRows", "CallTotal"]

_COLUMNS = (
    "context_id, call_id, created_at, branch, message_id, provider, model, input_tokens, "
    "output_tokens, cost_usd, latency_ms, failed, call"
)


@dataclass(frozen=True, slots=True)
class CallTotal:
    """The recorded calls to one provider: how many, how many failed, their tokens and
    what they cost (the calls with a known price)."""

    provider: str
    calls: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class CallRows:
    """The statements of the calls table and its rows, in one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        p = dialect.param
        self.insert = (
            f"INSERT INTO calls ({_COLUMNS}) VALUES ({', '.join(p(n) for n in range(1, 14))}) "
            "ON CONFLICT (context_id, call_id) DO NOTHING"
        )
        self.select = (
            f"SELECT {_COLUMNS} FROM calls WHERE context_id = {p(1)} "
            f"AND ({dialect.nullable_text(2)} IS NULL OR branch = {p(2)}) "
            f"ORDER BY created_at DESC, call_id DESC LIMIT {p(3)}"
        )
        self.totals = (
            "SELECT provider, count(*), sum(CASE WHEN failed THEN 1 ELSE 0 END), "
            "sum(input_tokens), sum(output_tokens), sum(cost_usd) "
            "FROM calls GROUP BY provider ORDER BY provider"
        )
        self.delete = f"DELETE FROM calls WHERE context_id = {p(1)}"

    def values(self, record: CallRecord) -> tuple[Any, ...]:
        return (
            self.dialect.key(record.context_id),
            record.call_id,
            self.dialect.time(record.created_at),
            record.branch,
            record.message_id,
            record.provider,
            record.model,
            record.input_tokens,
            record.output_tokens,
            record.cost_usd,
            record.latency_ms,
            record.failed,
            dumps(record.call),
        )

    def record(self, row: Row) -> CallRecord:
        return CallRecord(
            context_id=str(row[0]),
            call_id=row[1],
            created_at=self.dialect.micros(row[2]),
            branch=row[3],
            message_id=row[4],
            provider=row[5],
            model=row[6],
            input_tokens=int(row[7]),
            output_tokens=int(row[8]),
            cost_usd=None if row[9] is None else float(row[9]),
            latency_ms=float(row[10]),
            failed=bool(row[11]),
            call=orjson.loads(row[12]),
        )

    @staticmethod
    def total(row: Row) -> CallTotal:
        return CallTotal(
            provider=row[0],
            calls=int(row[1]),
            failed=int(row[2] or 0),
            input_tokens=int(row[3] or 0),
            output_tokens=int(row[4] or 0),
            cost_usd=float(row[5] or 0.0),
        )
