"""Settings from the environment (``MEDIAGATE_*``) and ``<home>/mediagate.toml``.

Precedence, highest first: explicit arguments, environment, the home's TOML file, defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE = "mediagate.toml"


def default_home() -> Path:
    return Path(os.environ.get("MEDIAGATE_HOME", "./data"))


S3_MAX_PARTS = 10_000
"""S3's most parts in one multipart upload."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAGATE_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<home>/catalog.sqlite3``."""

    storage: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "mediagate"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = ""
    s3_create_bucket: bool = True
    """Create ``s3_bucket`` on first use if it does not exist (needs s3:CreateBucket)."""
    s3_part_size: int = Field(default=8 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    """Multipart part size. A body larger than this streams to S3 as a multipart upload while it
    arrives (only its first bytes stay staged, for sniffing), unless it must stay whole locally
    (images, upload-time processing); smaller bodies are staged and sent with one PutObject. An
    upload holds at most three parts (one filling, two being sent), in anonymous spool files
    under the staging directory (the page cache, not the process's memory, holds them). S3 takes
    at most 10,000 parts: ``max_upload_size`` must fit in as many."""
    s3_stale_upload_seconds: int = 24 * 3600
    """Multipart uploads older than this that were never completed nor aborted (their node died
    mid-upload) are aborted by the garbage collector."""
    s3_redirect_reads: bool = False
    """Answer public reads of stored objects with a redirect (307) to a presigned S3 GET instead
    of proxying the bytes; processed variants are still served by the node."""
    s3_redirect_expiry_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    """How long a presigned read URL stays valid."""

    @model_validator(mode="after")
    def _parts_hold_the_largest_upload(self) -> Settings:
        if self.storage == "s3" and self.s3_part_size * S3_MAX_PARTS < self.max_upload_size:
            raise ValueError(
                f"s3_part_size ({self.s3_part_size} bytes) is too small for max_upload_size "
                f"({self.max_upload_size}): S3 takes at most {S3_MAX_PARTS} parts; raise s3_part_size"
            )
        return self

    public_url: str | None = None
    """Base URL clients reach us at; default: taken from each request's Host."""

    allow_private_callbacks: bool = False
    """Allow notify/callback/URL-import targets on loopback or private networks."""

    max_upload_size: int = 5 * 1024**3
    max_form_field_size: int = 64 * 1024
    max_header_size: int = 16 * 1024
    """Request headers a dialect accepts (UPYUN REST answers 431 above it). The HTTP layer refuses,
    before buffering, a header line or target over 2x this (431 / 414) and a head over 4x."""
    form_prebuffer_limit: int = 100 * 1024**2
    """Largest file part read before the policy fields when a form sends the file first."""

    max_api_keys_per_bucket: int = Field(default=100, ge=1)
    """Active (unrevoked) /v1 API keys one bucket may have; creating one more is 409
    ``limit_exceeded`` until one is revoked. Server-wide keys are not counted."""
    max_upload_tokens_per_bucket: int = Field(default=10_000, ge=1)
    """Live upload tokens (not expired, revoked or used up) one bucket may have at once."""
    max_tus_sessions_per_bucket: int = Field(default=1000, ge=1)
    """Unfinished tus uploads one bucket may have open (abandoned ones count until they are
    ``session_max_age_seconds`` old)."""

    date_skew_seconds: int = 1800
    notify_timeout_seconds: float = 5.0
    notify_retries: int = 5
    session_max_age_seconds: int = 7 * 24 * 3600
    """Abandoned multi-part upload sessions older than this are collected."""
    delivery_retention_seconds: int = 7 * 24 * 3600
    """Delivered or failed notifications are kept this long (counted from when they were queued)
    for inspection, then the collector deletes them; pending ones are never pruned."""

    garbage_grace_seconds: float = 30.0
    """Replaced and deleted versions are deleted from storage this long after (plus up to one
    maintenance round). A reader that already opened one keeps reading it: local files are
    unlinked, not truncated, and an S3 GET in progress completes; the grace covers the moment
    between a reader's catalog lookup and its open."""
    upload_lease_seconds: int = 6 * 3600
    """An upload's blob is reserved before it is stored; its reservation is not collected for
    this long (the slowest put to storage must finish within it)."""

    media_max_pixels: int = 100_000_000
    """Largest image (width x height, summed over animation frames) decoded; bigger is refused unread."""
    media_max_width: int = 30000
    media_max_height: int = 30000
    media_max_frames: int = 1000
    media_max_concurrent: int = 2
    """Image decodes running at once per process: bounds memory under parallel load."""
    media_cache_max_bytes: int = 1024**3
    """Disk used by cached processed variants (``<home>/cache``); least recently used go first."""

    log_format: Literal["text", "json"] = "text"
    """The server log (``mediagate.logs``): ``text`` lines, or ``json`` lines for machines."""
    log_level: str = "info"
    """Least severe server log line written (``serve --log-level`` sets it); ``debug`` adds the
    traceback of an unexpected error to its access line."""
    header_timeout_seconds: float = 30.0
    """A connection must deliver a whole request head within this long of its first byte (or of
    connecting): a stalled head is answered 408, a connection that sends nothing is closed, so
    idle or trickling clients cannot hold connections for ever (slowloris)."""

    secret_key: SecretStr | None = None
    """The sealing key of the secrets stored in the catalog (a Fernet key; ``mediagate secrets
    new-key`` makes one). Every node of one catalog sets the same. Several keys separated by commas
    rotate: the first seals, all open. Unset: the home's ``secret.key`` file."""
    redis_url: str | None = None
    """``MEDIAGATE_REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/0``): Redis shared by the nodes. The
    asynchronous tasks run on it (huey's RedisHuey, shared by every worker process of every node) and
    ``/healthz`` checks it. Unset: the embedded default (in-process queue, nothing else to start)."""
    metrics_token: SecretStr | None = None
    """``MEDIAGATE_METRICS_TOKEN``: when set, ``GET /metrics`` needs ``Authorization: Bearer <it>``;
    unset, the metrics are open to whoever reaches the port (they name no bucket, key or path)."""
    task_queue_name: str = "mediagate"
    """Name of the Redis queue (huey's key prefix); nodes of one installation share it."""
    run_workers: bool = True
    """Run task workers inside the server (``serve --no-worker`` turns it off)."""
    task_workers: int = 2
    """Tasks run at once per worker process: bounds memory under a burst."""
    task_timeout_seconds: float = 600.0
    """One attempt of a task longer than this fails (and is retried)."""
    task_lease_seconds: float = 30.0
    """A running task's lease, renewed every third of it; a worker killed mid-task loses it and
    the task runs again after at most this long."""
    task_max_attempts: int = 3
    """Attempts of a task before it fails for good (a bad parameter fails at once)."""
    task_backoff_seconds: float = 5.0
    """Delay before the 2nd attempt; each further one waits four times longer (capped at 1 h)."""
    task_retention_seconds: int = 30 * 24 * 3600
    """Done and failed tasks are kept this long after they finished (``mediagate task list``),
    then the collector deletes them; pending and running ones are never pruned."""
    task_max_transcodes: int = 1
    """ffmpeg runs (UPYUN ``naga`` transcodes and frame grabs) at once per worker process; further
    tasks wait for a slot, so a burst of videos keeps memory and CPU flat."""
    task_transcode_threads: int = 2
    """Threads each ffmpeg run may use."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = _home_hint(init_settings)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=home / CONFIG_FILE)
        return (init_settings, env_settings, toml)

    @property
    def catalog_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'catalog.sqlite3'}"

    @property
    def staging_dir(self) -> Path:
        """The staging root; each process stages in its own subdirectory (core.staging)."""
        return self.home / "staging"

    @property
    def key_file(self) -> Path:
        return self.home / "secret.key"


def _home_hint(init_settings: PydanticBaseSettingsSource) -> Path:
    explicit: Any = init_settings().get("home")
    return Path(explicit) if explicit else default_home()
