"""What ``mmsearch serve`` was asked for: :class:`ServerConfig`, defaulting as the settings do."""

from __future__ import annotations

from dataclasses import dataclass

from mmsearch.errors import ConfigError
from mmsearch.server.security import is_loopback
from mmsearch.settings import Settings, setting


@dataclass(frozen=True)
class ServerConfig:
    """The server rows of :data:`mmsearch.settings.SETTINGS`, resolved; each default is
    that table's, so the two never disagree."""

    host: str = setting("host").default
    port: int = setting("port").default
    token: str | None = setting("token").default
    allow_writes: bool = setting("allow_writes").default
    max_upload_mb: float = setting("max_upload_mb").default
    allow_url_fetch: bool = setting("allow_url_fetch").default

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerConfig:
        return cls(
            host=settings.host,
            port=settings.port,
            token=settings.token or None,
            allow_writes=bool(settings.allow_writes),
            max_upload_mb=float(settings.max_upload_mb),
            allow_url_fetch=bool(settings.allow_url_fetch),
        )

    @property
    def max_body(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    def check(self) -> None:
        """Refuse a non-loopback address without a token (:class:`ConfigError`)."""
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"--host {self.host} makes the index reachable from other machines: give a"
                " secret with --token T (or MMSEARCH_TOKEN=T), or keep --host 127.0.0.1"
            )
