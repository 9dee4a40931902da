from __future__ import annotations

import pytest

from loremaster import ConfigurationError, ContextManager, Settings, UnsupportedFormat
from loremaster.config import load_settings

SPEC_VARIABLES = {
    "CONTEXT_DATABASE_URL": ("database_url", "sqlite:///from-env.db", "sqlite:///from-env.db"),
    "CONTEXT_REDIS_URL": ("redis_url", "redis://localhost:6379/0", "redis://localhost:6379/0"),
    "CONTEXT_ENABLE_REAL_TIME_SYNC": ("enable_real_time_sync", "false", False),
    "CONTEXT_ENABLE_COMPRESSION": ("enable_compression", "false", False),
    "CONTEXT_ENABLE_VALIDATION": ("enable_validation", "false", False),
    "CONTEXT_ENABLE_VERSIONING": ("enable_versioning", "false", False),
    "CONTEXT_ENABLE_TRANSLATION": ("enable_translation", "false", False),
    "CONTEXT_MAX_SIZE_MB": ("max_size_mb", "2.5", 2.5),
    "CONTEXT_MAX_VERSIONS": ("max_versions", "7", 7),
    "CONTEXT_CACHE_TTL": ("cache_ttl", "60", 60),
    "CONTEXT_SYNC_TIMEOUT": ("sync_timeout", "5", 5.0),
    "CONTEXT_COMPRESSION_ALGORITHM": ("compression_algorithm", "brotli", "brotli"),
    "CONTEXT_SERIALIZATION_FORMAT": ("serialization_format", "json", "json"),
    "CONTEXT_MAX_PARTICIPANTS": ("max_participants", "8", 8),
    "CONTEXT_LOCK_TIMEOUT": ("lock_timeout", "30", 30),
    "CONTEXT_AUTO_CLEANUP": ("auto_cleanup", "false", False),
    "CONTEXT_AUTO_ARCHIVE_DAYS": ("auto_archive_days", "30", 30),
    "CONTEXT_CLEANUP_INTERVAL": ("cleanup_interval", "6", 6.0),
}


def test_spec_defaults() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///loremaster.db"
    assert settings.redis_url is None
    assert settings.max_size_mb == 10
    assert settings.max_versions == 100
    assert settings.cache_ttl == 3600
    assert settings.sync_timeout == 30
    assert settings.compression_algorithm == "auto"
    assert settings.serialization_format == "msgpack"
    assert settings.max_participants == 50
    assert settings.lock_timeout == 300
    assert settings.auto_archive_days == 90
    assert settings.cleanup_interval == 24
    assert settings.max_size_bytes == 10 * 1024 * 1024


def test_every_spec_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, (_, raw, _) in SPEC_VARIABLES.items():
        monkeypatch.setenv(variable, raw)
    settings = Settings()
    for field, _, expected in SPEC_VARIABLES.values():
        assert getattr(settings, field) == expected, field


def test_constructor_arguments_override_the_environment(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("CONTEXT_MAX_SIZE_MB", "3")
    monkeypatch.setenv("CONTEXT_DATABASE_URL", "sqlite:///elsewhere.db")
    manager = ContextManager(database_url=sqlite_url, max_size_mb=1)
    assert manager.settings.database_url == sqlite_url
    assert manager.settings.max_size_mb == 1
    assert load_settings(Settings(cache_ttl=5), lock_timeout=9).cache_ttl == 5


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_size_mb": -1}, ConfigurationError),
        ({"compression_algorithm": "rar"}, ConfigurationError),
        ({"no_such_setting": 1}, ConfigurationError),
        ({"database_url": "mysql://localhost/x"}, UnsupportedFormat),
        ({"database_url": "sqlite:///:memory:"}, ConfigurationError),
        ({"database_url": "sqlite://host/x.db"}, ConfigurationError),
    ],
)
def test_bad_settings_are_typed_errors(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        ContextManager(**kwargs)  # type: ignore[arg-type]
