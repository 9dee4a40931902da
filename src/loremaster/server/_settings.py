"""The server's own settings: ``LOREMASTER_*`` environment variables (the manager's stay
``CONTEXT_*``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..errors import ConfigurationError

__all__ = ["ServerSettings", "load_server_settings", "parse_api_keys"]


def parse_api_keys(text: str) -> dict[str, str]:
    """``token=user_id`` pairs, separated by commas: the user each static key acts as."""
    keys: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        token, sep, user_id = pair.partition("=")
        if not sep or not token.strip() or not user_id.strip():
            raise ValueError("LOREMASTER_API_KEYS is a comma-separated list of token=user_id")
        keys[token.strip()] = user_id.strip()
    return keys


class ServerSettings(BaseSettings):
    """How `loremaster serve` authenticates, limits and streams."""

    model_config = SettingsConfigDict(env_prefix="LOREMASTER_", extra="ignore")

    api_keys: SecretStr = Field(
        SecretStr(""), description="static bearer tokens: token=user_id,token2=user2"
    )
    jwt_secret: SecretStr | None = Field(None, description="HS256 secret of bearer JWTs")
    rate_limit: float = Field(100.0, ge=0, description="requests per second per user (0: off)")
    rate_burst: int = Field(200, ge=1, description="requests a user may make at once")
    ws_queue: int = Field(1024, ge=1, description="messages queued per socket before closing")
    sse_keepalive: float = Field(
        15.0, gt=0, le=3600, description="seconds of quiet before an event stream's keep-alive"
    )
    demo: bool = Field(False, description="seed the demo campaign into an empty database")

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())
        return value

    @property
    def keys(self) -> dict[str, str]:
        return parse_api_keys(self.api_keys.get_secret_value())

    @property
    def local_mode(self) -> bool:
        """Neither API keys nor JWTs: every request is the trusted local caller."""
        return not self.keys and self.jwt_secret is None


def load_server_settings(**overrides: Any) -> ServerSettings:
    """The settings from the environment and `overrides`; `ConfigurationError` if any
    is invalid."""
    try:
        return ServerSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid server settings: {problems}") from exc
