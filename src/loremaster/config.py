"""Settings: the spec's ``CONTEXT_*`` environment variables, one field each.

Precedence, highest first: constructor arguments of `ContextManager`, environment
variables, the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError, UnsupportedFormat

__all__ = [
    "CompressionAlgorithm",
    "ModelLimits",
    "SQLiteFile",
    "SerializationFormat",
    "Settings",
    "check_database_url",
    "check_redis_url",
    "database_address",
    "load_settings",
    "sqlite_file",
]

CompressionAlgorithm = Literal["none", "gzip", "lz4", "zstd", "brotli", "auto"]
SerializationFormat = Literal["json", "msgpack", "pickle"]

DEFAULT_DATABASE_URL = "sqlite:///loremaster.db"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_SQLITE_MODES = {"ro": True, "rw": False, "rwc": False}


@dataclass(frozen=True, slots=True)
class SQLiteFile:
    """What a ``sqlite:`` URL names: the file, and whether it is opened read-only
    (``?mode=ro``) or as immutable (``?immutable=1``: read-only, no locks, no WAL files)."""

    path: str
    read_only: bool = False
    immutable: bool = False


def sqlite_file(url: str) -> SQLiteFile:
    """The file of a ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` URL, with
    its options. Raises ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/"):
        raise ValueError("not a SQLite URL (use sqlite:///relative.db or sqlite:////abs/path.db)")
    path = unquote(parts.path[1:])
    if not path or path == ":memory:":
        raise ValueError("SQLite storage needs a file path, not an in-memory database")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"mode", "immutable"})
    if unknown:
        raise ValueError(f"unknown SQLite URL option {unknown[0]!r} (known: mode, immutable)")
    mode = options.get("mode", "rwc")
    if mode not in _SQLITE_MODES:
        raise ValueError(f"SQLite mode {mode!r} is not one of ro, rw, rwc")
    immutable = options.get("immutable", "0")
    if immutable not in ("0", "1"):
        raise ValueError(f"SQLite immutable={immutable!r} is not 0 or 1")
    return SQLiteFile(path, read_only=_SQLITE_MODES[mode], immutable=immutable == "1")


def _port(text: str, host: str) -> None:
    if not (text.isdigit() and 0 < int(text) < 65536):
        raise ValueError(f"the port of host {host!r} is {text!r}, not a number from 1 to 65535")


def _postgres_hosts(netloc: str) -> list[tuple[str, int]]:
    """The (host, port) entries of a PostgreSQL URL (several, comma-separated, are tried in
    turn), credentials left out; each port checked, 5432 where none is given."""
    hosts = netloc.rpartition("@")[2]
    found = []
    for entry in hosts.split(",") if hosts else []:
        if entry.startswith("["):
            host, bracket, rest = entry[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"host {entry!r} is not [IPv6 address] or [address]:port")
            port = rest[1:]
        else:
            host, _, port = entry.partition(":")
        if not host and not port:
            raise ValueError("an empty host in the host list")
        if port or entry.endswith(":"):
            _port(port, host)
        found.append((host, int(port or 5432)))
    return found


def check_database_url(url: str) -> None:
    """ValueError unless `url` is a SQLite or PostgreSQL URL loremaster can open;
    UnsupportedFormat for another kind of database. Messages never repeat a password."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        sqlite_file(url)
    elif scheme in POSTGRES_SCHEMES:
        _postgres_hosts(urlsplit(url).netloc)
    else:
        raise UnsupportedFormat(
            f"unsupported database URL scheme {scheme!r} (use sqlite:/// or postgresql://)"
        )


def check_redis_url(url: str) -> None:
    """ValueError unless `url` is a ``redis://``, ``rediss://`` or ``unix://`` URL."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// Redis URL needs the socket's path: unix:///path/to.sock")
        return
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(
            "not a Redis URL (use redis://host:6379/0, rediss://... or unix:///path/to.sock)"
        )
    host, _, port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")
    if port or parts.netloc.endswith(":"):
        _port(port, parts.hostname or host)
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise ValueError(f"the Redis database is {database!r}, not a number (redis://host/0)")


def database_address(url: str) -> str:
    """Where a database URL points, for messages: the SQLite file, or PostgreSQL's
    ``host:port/database`` (never the user or password)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return unquote(parts.path[1:])
    hosts = ",".join(
        f"[{host}]:{port}" if ":" in host else f"{host or 'localhost'}:{port}"
        for host, port in _postgres_hosts(parts.netloc)
    )
    database = unquote(parts.path[1:])
    return (hosts or "the default server") + (f"/{database}" if database else "")


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
    input_per_mtok: float | None = Field(None, ge=0, description="USD per million input tokens")
    output_per_mtok: float | None = Field(None, ge=0, description="USD per million output tokens")
    cache_read_per_mtok: float | None = Field(None, ge=0, description="USD per million cached")
    cache_write_per_mtok: float | None = Field(
        None, ge=0, description="USD per million cache writes"
    )


class Settings(BaseSettings):
    """Every setting of loremaster. Field ``x`` is read from ``CONTEXT_X``."""

    model_config = SettingsConfigDict(
        env_prefix="CONTEXT_", extra="forbid", frozen=True, hide_input_in_errors=True
    )

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
    watch_interval: float = Field(
        0.05,
        ge=0,
        le=60,
        description="SQLite without Redis: seconds between looks for other processes' "
        "commits while anyone subscribes (0: never look)",
    )

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
    cache_fallback: bool = Field(
        True,
        description="while the database is unavailable, reads serve what the caches hold, "
        "marked stale",
    )
    access_touch_seconds: float = Field(
        60.0, ge=0, description="last_accessed is written at most this often per context"
    )
    models: dict[str, ModelLimits] = Field(
        default_factory=dict,
        description="models added to or overriding the translation registry (JSON object)",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        check_database_url(url)
        return url

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, url: Any) -> Any:
        if url == "":  # CONTEXT_REDIS_URL= (set but empty) means none
            return None
        if isinstance(url, str):
            check_redis_url(url)
        return url

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
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise ConfigurationError(f"invalid settings: {problems}") from exc


def _problem(error: Any) -> str:
    """One validation error as ``field (CONTEXT_FIELD): what is wrong``."""
    where = ".".join(str(part) for part in error["loc"])
    if len(error["loc"]) == 1 and where in Settings.model_fields:
        where += f" (CONTEXT_{where.upper()})"
    cause = error.get("ctx", {}).get("error")
    message = str(cause) if error["type"] == "value_error" and cause else error["msg"]
    return f"{where}: {message}"
