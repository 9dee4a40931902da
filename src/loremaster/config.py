"""Settings: the spec's ``CONTEXT_*`` environment variables, one field each.

Precedence, highest first: constructor arguments of `ContextManager`, environment
variables, the defaults below.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError

__all__ = [
    "CompressionAlgorithm",
    "ModelLimits",
    "SerializationFormat",
    "Settings",
    "load_settings",
]

CompressionAlgorithm = Literal["none", "gzip", "lz4", "zstd", "brotli", "auto"]
SerializationFormat = Literal["json", "msgpack", "pickle"]

DEFAULT_DATABASE_URL = "sqlite:///loremaster.db"


class ModelLimits(BaseModel):
    """One model's entry in ``CONTEXT_MODELS``: it adds the model to the translation
    registry, or overrides the fields it gives of a built-in one (docs/translation.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["anthropic", "openai", "google"] | None = None
    context_window: int | None = Field(None, gt=0, description="tokens of prompt and answer")
    max_output: int | None = Field(None, gt=0, description="longest answer, in tokens")
    encoding: Literal["o200k_base", "cl100k_base"] | None = None
    token_factor: float | None = Field(None, gt=0, description="estimate = encoding count x this")
    mid_conversation_system: bool | None = None
    thought_signatures_required: bool | None = None


class Settings(BaseSettings):
    """Every setting of loremaster. Field ``x`` is read from ``CONTEXT_X``."""

    model_config = SettingsConfigDict(env_prefix="CONTEXT_", extra="forbid", frozen=True)

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="sqlite:///path (embedded default) or postgresql://user:pass@host/db",
    )
    redis_url: str | None = Field(
        None, description="redis://host:port/db; None keeps the event bus in-process"
    )

    enable_real_time_sync: bool = Field(True, description="publish events to subscribers")
    enable_compression: bool = Field(True, description="compress large stored payloads")
    enable_validation: bool = Field(True, description="validate contexts on every write")
    enable_versioning: bool = Field(True, description="record versions automatically")
    enable_translation: bool = Field(True, description="allow provider migration")

    max_size_mb: float = Field(10.0, gt=0, description="largest context, messages included")
    max_versions: int = Field(
        100, ge=1, description="automatic versions (one per change) kept per context"
    )
    max_checkpoints: int = Field(
        1000, ge=1, description="versions made on request (create_version...) kept per context"
    )
    version_strategy: Literal["full", "incremental", "hybrid"] = Field(
        "hybrid", description="snapshots, JSON Patches, or patches with a snapshot every K"
    )
    version_snapshot_every: int = Field(
        50, ge=1, description="hybrid: a snapshot at least every this many versions (K)"
    )
    version_every_changes: int = Field(
        1, ge=0, description="automatic version after this many changes (0: not by count)"
    )
    version_every_seconds: float = Field(
        0.0, ge=0, description="automatic version once this long has passed (0: not by time)"
    )
    cache_ttl: int = Field(3600, ge=0, description="seconds a cached context stays fresh")
    sync_timeout: float = Field(30.0, gt=0, description="seconds to wait for the backend")

    compression_algorithm: CompressionAlgorithm = Field(
        "auto", description="auto picks per payload: raw when small or incompressible, else zstd"
    )
    serialization_format: SerializationFormat = Field("msgpack")
    codec_threshold_bytes: int = Field(
        4096, ge=0, description="message bodies larger than this are stored through the codec"
    )
    codec_secret: SecretStr | None = Field(
        None, description="HMAC key that signs pickled payloads; without it pickle is refused"
    )

    max_participants: int = Field(50, ge=1, description="participants per collaborative room")
    lock_timeout: int = Field(300, ge=1, description="seconds an edit lock lasts")

    auto_cleanup: bool = Field(True, description="run the retention task in the background")
    auto_archive_days: float = Field(90, gt=0, description="archive contexts untouched this long")
    cleanup_interval: float = Field(24.0, gt=0, description="hours between retention runs")

    deleted_retention_days: float = Field(
        30, ge=0, description="soft-deleted contexts are removed for good after this long"
    )
    event_retention_days: float | None = Field(
        None, gt=0, description="events older than this are trimmed (None keeps them all)"
    )
    statistics_refresh_seconds: float = Field(
        300, gt=0, description="how often the statistics view is refreshed"
    )
    maintenance_poll_seconds: float = Field(
        60, gt=0, description="how often the background task checks what is due"
    )

    pool_size: int = Field(10, ge=1, description="PostgreSQL connections kept open")
    pool_max_overflow: int = Field(10, ge=0, description="extra connections under load")

    cache_size: int = Field(1024, ge=0, description="contexts kept in the per-process cache")
    cache_l2: bool = Field(
        False, description="also share cached rows between processes in Redis (needs redis_url)"
    )
    access_touch_seconds: float = Field(
        60.0, ge=0, description="last_accessed is written at most this often per context"
    )
    models: dict[str, ModelLimits] = Field(
        default_factory=dict,
        description="models added to or overriding the translation registry (JSON object)",
    )

    @property
    def max_size_bytes(self) -> int:
        return int(self.max_size_mb * 1024 * 1024)


def load_settings(settings: Settings | None = None, **overrides: Any) -> Settings:
    """Settings from the environment (or `settings`), with non-None `overrides` on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        base = {} if settings is None else settings.model_dump()
        return Settings(**{**base, **given})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from exc
