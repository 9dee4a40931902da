"""Schema migrations: numbered SQL files, ``NNNN_name.sql``, one folder per backend, applied
in order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "Migration",
    "MigrationStatus",
    "available_migrations",
    "migration_status",
    "pending_migrations",
]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    script: str


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Which migrations a database has (with when, in epoch microseconds) and lacks."""

    applied: list[tuple[int, str, int]]
    pending: list[tuple[int, str]]

    @property
    def version(self) -> int:
        return max((version for version, _, _ in self.applied), default=0)


def available_migrations(backend: str) -> list[Migration]:
    folder = resources.files(f"loremaster.storage.migrations.{backend}")
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.version)


def pending_migrations(backend: str, applied: set[int]) -> list[Migration]:
    return [m for m in available_migrations(backend) if m.version not in applied]


def migration_status(backend: str, applied: list[tuple[int, str, int]]) -> MigrationStatus:
    done = {version for version, _, _ in applied}
    pending = [(m.version, m.name) for m in pending_migrations(backend, done)]
    return MigrationStatus(applied=sorted(applied), pending=pending)
