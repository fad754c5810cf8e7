"""One Settings object for the whole process, read from the environment (prefix ``VIGIL_``)
and an optional ``.env`` file. Every setting has a safe default for the embedded mode."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.core.notify import WebhookTarget

#: Secrets that may also be given as VIGIL_<NAME>_FILE (a path to a file holding them).
SECRET_FILE_SETTINGS = (
    "jwt_secret",
    "jwt_previous_secrets",
    "admin_password",
    "network_secret_key",
    "network_previous_secret_keys",
)

#: Connection URLs (they may hold passwords), also accepted as VIGIL_<NAME>_FILE.
URL_FILE_SETTINGS = ("database_url", "redis_url", "broker_url")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- platform -----------------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Where the embedded SQLite file lives.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means sqlite:///<data_dir>/vigil.db."
    )
    redis_url: str = Field("", description="Redis URL; empty means no Redis (in-process bus).")
    database_url_file: Path | None = Field(
        None, description="A file holding VIGIL_DATABASE_URL (Docker and Kubernetes secrets)."
    )
    redis_url_file: Path | None = Field(None, description="A file holding VIGIL_REDIS_URL.")
    cache_ttl: float = Field(
        300.0, ge=0, description="Seconds an API answer stays cached (0: no caching)."
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_format: str = Field("json", pattern="^(json|console)$")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (JSON list). Empty: only "
        "the UI's own origin (same-origin requests need no CORS).",
    )
    run_jobs_on_start: bool = Field(
        True, description="`vigil up` runs each job flagged run_on_start once at start-up."
    )
    jobs_log_retention_days: int = Field(
        30, ge=0, description="Finished job runs are kept this many days in jobs_log (0: forever)."
    )
    jobs_log_skipped_retention_hours: int = Field(
        24,
        ge=0,
        description="Skipped job runs (an interval job with nothing to do) are kept this many "
        "hours (0: as long as the other runs).",
    )

    # --- web UI -------------------------------------------------------------------------------
    ui_refresh_seconds: int = Field(
        60, ge=0, description="Dashboards refresh their data this often (0: never)."
    )

    # --- rate limiting ------------------------------------------------------------------------
    rate_limit: str = Field(
        "600/minute",
        description="API requests allowed per client address, as a `limits` rate string: "
        "'100/minute', or several that all apply, '10/second;600/hour'. Empty: no limit.",
    )

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        try:
            items = parse_many(value)
        except ValueError:
            raise ValueError(
                f"VIGIL_RATE_LIMIT {value!r} is not a rate limit: write e.g. '100/minute' or "
                "'10/second;600/hour' (empty turns rate limiting off)"
            ) from None
        if any(item.amount < 1 for item in items):
            raise ValueError(
                f"VIGIL_RATE_LIMIT {value!r}: every limit must allow 1 request or more"
            )
        return value

    # --- accounts, tokens, login (vigil.core.auth; docs/auth.md) -----------------------------
    jwt_secret: SecretStr = Field(
        SecretStr(""),
        description="Key that signs access tokens (HS256; 32+ random bytes). Empty: one is "
        "generated and kept in <data_dir>/jwt_secret (fine for one host; set it when several "
        "hosts serve the API). Or VIGIL_JWT_SECRET_FILE: a file holding it.",
    )
    jwt_secret_file: Path | None = None
    jwt_previous_secrets: SecretStr = Field(
        SecretStr(""),
        description="Earlier signing keys, still accepted for verification while their tokens "
        "live (comma- or newline-separated). Or VIGIL_JWT_PREVIOUS_SECRETS_FILE.",
    )
    jwt_previous_secrets_file: Path | None = None
    access_token_minutes: int = Field(15, ge=1, le=1440, description="Access token lifetime.")
    refresh_token_days: int = Field(14, ge=1, le=365, description="Refresh token lifetime.")
    registration_enabled: bool = Field(
        True,
        description="POST /api/v1/auth/register is open (the first account becomes Admin); "
        "false: only an Admin (or `vigil users create-admin`) makes accounts.",
    )
    argon2_time_cost: int = Field(3, ge=1, le=50, description="argon2id passes.")
    argon2_memory_kib: int = Field(65536, ge=8, le=4194304, description="argon2id memory (KiB).")
    argon2_parallelism: int = Field(2, ge=1, le=64, description="argon2id lanes.")
    login_rate_limit_account: str = Field(
        "5/minute;30/hour", description="Login attempts allowed per account (email)."
    )
    login_rate_limit_ip: str = Field(
        "20/minute;200/hour", description="Login attempts allowed per client address."
    )
    admin_password: SecretStr = Field(
        SecretStr(""),
        description="Password `vigil users create-admin` uses (else it prompts). Or "
        "VIGIL_ADMIN_PASSWORD_FILE.",
    )
    admin_password_file: Path | None = None

    @field_validator("login_rate_limit_account", "login_rate_limit_ip")
    @classmethod
    def _valid_login_limit(cls, value: str) -> str:
        value = value.strip()
        try:
            items = parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: write e.g. '5/minute;30/hour'"
            ) from None
        if not items or any(item.amount < 1 for item in items):
            raise ValueError(f"{value!r}: every limit must allow 1 attempt or more")
        return value

    @model_validator(mode="after")
    def _argon2_memory_per_lane(self) -> Settings:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError(
                "VIGIL_ARGON2_MEMORY_KIB must be at least 8 KiB per lane (VIGIL_ARGON2_PARALLELISM)"
            )
        return self

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Settings:
        """The ``*_FILE`` convention: a secret may be given as the path of a file holding it
        (Docker and Kubernetes secrets), never both."""
        for name in SECRET_FILE_SETTINGS:
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            if getattr(self, name).get_secret_value():
                raise ValueError(f"set VIGIL_{name.upper()} or VIGIL_{name.upper()}_FILE, not both")
            try:
                text = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"VIGIL_{name.upper()}_FILE: cannot read {path}: {exc}") from None
            setattr(self, name, SecretStr(text))
        return self

    # --- markets: NBP source ------------------------------------------------------------------
    nbp_base_url: str = "https://api.nbp.pl/api"
    nbp_timeout_seconds: float = Field(20.0, gt=0)
    nbp_max_attempts: int = Field(5, ge=1, le=20)
    nbp_backoff_initial_seconds: float = Field(1.0, ge=0)
    nbp_backoff_max_seconds: float = Field(60.0, ge=0)
    nbp_currency_start: date = date(2002, 1, 2)
    nbp_gold_start: date = date(2013, 1, 2)
    nbp_sync_cron: str = Field("0 * * * *", description="When the hourly NBP sync runs (cron).")

    # --- markets: CoinGecko source ------------------------------------------------------------
    coingecko_base_url: str = Field(
        "https://api.coingecko.com/api/v3",
        description="CoinGecko API root: api.coingecko.com for keyless and demo keys, "
        "https://pro-api.coingecko.com/api/v3 for pro keys.",
    )
    coingecko_api_key: SecretStr = Field(
        SecretStr(""), description="CoinGecko API key (empty: keyless, IP rate-limited)."
    )
    coingecko_api_key_type: Literal["auto", "demo", "pro"] = Field(
        "auto",
        description="Which header carries the key: demo (x-cg-demo-api-key), pro "
        "(x-cg-pro-api-key), or auto: pro when the base URL is pro-api.coingecko.com.",
    )
    coingecko_timeout_seconds: float = Field(10.0, gt=0)
    coingecko_max_attempts: int = Field(4, ge=1, le=20)
    coingecko_backoff_initial_seconds: float = Field(1.0, ge=0)
    coingecko_backoff_max_seconds: float = Field(
        120.0,
        ge=0,
        description="Longest wait between tries; a 429 asking to wait longer (Retry-After) "
        "ends the call at once, for the next poll to try again.",
    )
    coingecko_poll_seconds: int = Field(
        60,
        ge=1,
        description="How often tracked crypto assets are polled (seconds); CoinGecko refreshes "
        "/simple/price about every 60 s (30 s on pro plans), so faster polls see the same price.",
    )

    # --- markets: the brain (MACD signals) -------------------------------------------------
    macd_fast: int = Field(12, ge=2, le=500, description="Fast EMA period.")
    macd_slow: int = Field(26, ge=3, le=1000, description="Slow EMA period.")
    macd_signal: int = Field(9, ge=2, le=500, description="Signal line EMA period.")
    signal_horizon_days: int = Field(
        5, ge=1, le=365, description="How many days ahead a recommendation is meant for."
    )
    analysis_window_days: int = Field(
        90, ge=2, le=36500, description="Window of the analysis snapshot (calendar days)."
    )
    signals_watchdog_cron: str = Field(
        "15 * * * *", description="When the brain catches up on assets with unsignalled prices."
    )

    # --- reading: book sources (Google Books, Open Library) ----------------------------------
    google_books_base_url: str = Field(
        "https://www.googleapis.com/books/v1", description="Google Books API root."
    )
    google_books_api_key: SecretStr = Field(
        SecretStr(""),
        description="Google Books API key (empty: keyless, a small shared quota); sent in the "
        "x-goog-api-key header, never in the URL.",
    )
    open_library_base_url: str = Field(
        "https://openlibrary.org",
        description="Open Library root: the second book source, asked when Google Books "
        "fails or has no page count.",
    )
    books_timeout_seconds: float = Field(10.0, gt=0, description="Per request to a book source.")
    books_max_attempts: int = Field(
        3, ge=1, le=20, description="Tries per request on 429, 408, 5xx, timeouts, network errors."
    )
    books_backoff_initial_seconds: float = Field(0.5, ge=0)
    books_backoff_max_seconds: float = Field(
        10.0,
        ge=0,
        description="Longest wait between tries; a 429 asking to wait longer gives up at once "
        "(the other source is asked instead).",
    )
    books_cache_seconds: float = Field(
        86400.0, ge=0, description="How long search results and looked-up books are cached."
    )
    reading_timezone: str = Field(
        "UTC",
        description="IANA time zone of the reading days (weekday habits, 'today') when a "
        "request does not name one.",
    )

    @field_validator("reading_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"VIGIL_READING_TIMEZONE {value!r} is not an IANA time zone such as "
                "'Europe/Warsaw' or 'UTC'"
            ) from None
        return value

    # --- notifications ----------------------------------------------------------------------
    webhooks: list[WebhookTarget] = Field(
        default_factory=list,
        description='Where alerts are sent (JSON list): [{"url": "https://…", "format": '
        '"generic" | "slack" | "discord" | "alertmanager"}]. Empty: alerts are only stored '
        "and logged.",
    )
    webhook_max_attempts: int = Field(5, ge=1, le=20, description="Tries per webhook and alert.")
    webhook_backoff_initial_seconds: float = Field(0.5, ge=0)
    webhook_backoff_max_seconds: float = Field(30.0, ge=0)

    # --- network: inventory credentials, ICMP collector, device alerts (docs/network.md) ----
    network_secret_key: SecretStr = Field(
        SecretStr(""),
        description="Key that encrypts device credentials at rest (Fernet; any string is "
        "stretched to one). Empty: one is generated and kept in <data_dir>/network_secret_key. "
        "Or VIGIL_NETWORK_SECRET_KEY_FILE.",
    )
    network_secret_key_file: Path | None = None
    network_previous_secret_keys: SecretStr = Field(
        SecretStr(""),
        description="Earlier credential keys, still used to decrypt (comma- or newline-"
        "separated). Or VIGIL_NETWORK_PREVIOUS_SECRET_KEYS_FILE.",
    )
    network_previous_secret_keys_file: Path | None = None
    network_icmp_tick_seconds: int = Field(
        10,
        ge=1,
        le=3600,
        description="How often the network.icmp job looks for devices due a poll; each "
        "device's own interval is spread over its ticks.",
    )
    network_icmp_count: int = Field(3, ge=1, le=20, description="Echo requests per ICMP poll.")
    network_icmp_interval_seconds: float = Field(
        0.05, ge=0.0, le=10, description="Pause between the echo requests of one poll."
    )
    network_icmp_timeout_seconds: float = Field(
        1.0, gt=0, le=30, description="How long an ICMP poll waits for each reply."
    )
    network_icmp_concurrency: int = Field(
        50, ge=1, le=1000, description="ICMP polls in flight at once per worker process."
    )
    network_icmp_privileged: Literal["auto", "raw", "unprivileged"] = Field(
        "auto",
        description="ICMP sockets: raw (root or CAP_NET_RAW), unprivileged (datagram ICMP, "
        "allowed by net.ipv4.ping_group_range) or auto (unprivileged when the range admits "
        "this process's group, raw otherwise).",
    )
    network_snmp_tick_seconds: int = Field(
        30,
        ge=1,
        le=3600,
        description="How often the network.snmp job looks for devices due an SNMP poll "
        "(devices with snmp_interval_seconds and SNMP credentials).",
    )
    network_snmp_timeout_seconds: float = Field(
        1.0, gt=0, le=30, description="How long the SNMP collector waits for each answer."
    )
    network_snmp_retries: int = Field(1, ge=0, le=5, description="SNMP retries per request.")
    network_snmp_concurrency: int = Field(
        50, ge=1, le=1000, description="SNMP polls in flight at once per worker process."
    )
    network_snmp_deadline_seconds: float = Field(
        10.0, gt=0, le=300, description="The most one device's SNMP poll may take."
    )
    network_down_after_failures: int = Field(
        3, ge=1, le=1000, description="Consecutive failed polls before a device is down."
    )
    network_down_after_minutes: float = Field(
        0,
        ge=0,
        le=10080,
        description="Also down once polls have failed for this long (0: only the count).",
    )
    network_up_after_successes: int = Field(
        2,
        ge=1,
        le=1000,
        description="Consecutive good polls before a down device is up again (hysteresis).",
    )

    # --- distributed roles: events, Celery, the scheduler's lock ----------------------------
    event_channels: dict[str, str] = Field(
        default_factory=dict,
        description="Redis pub/sub channel per event topic (JSON object); a topic not listed "
        'uses its own name as the channel, e.g. {"rates.ingested": "prod.rates.ingested"}.',
    )
    broker_url: str = Field(
        "", description="Celery broker of `vigil worker` and `vigil scheduler` (empty: Redis)."
    )
    broker_url_file: Path | None = Field(None, description="A file holding VIGIL_BROKER_URL.")
    worker_metrics_port: int = Field(
        8001, ge=0, le=65535, description="Where `vigil worker` serves /metrics (0: off)."
    )
    job_visibility_timeout: float = Field(
        3600.0,
        gt=0,
        description="Seconds before a job taken by a worker that died is handed to another one.",
    )
    scheduler_lock_ttl: float = Field(
        15.0, ge=1, description="Seconds the active scheduler's Redis lock lives unrenewed."
    )

    # --- traces (vigil.core.tracing; docs/observability.md) -----------------------------------
    otel_traces_exporter: Literal["none", "otlp", "console"] = Field(
        "none",
        validation_alias=AliasChoices("OTEL_TRACES_EXPORTER", "VIGIL_OTEL_TRACES_EXPORTER"),
        description="OpenTelemetry's standard variable: otlp exports spans over OTLP/HTTP "
        "(OTEL_EXPORTER_OTLP_* say where), console prints them; none (Vigil's default, unlike "
        "the SDK's) installs no tracing at all.",
    )

    @model_validator(mode="after")
    def _urls_from_files(self) -> Settings:
        """Connection URLs carry passwords: like the secrets, each may be given as the path of
        a file holding it (the chart mounts them from a Secret), never both."""
        for name in URL_FILE_SETTINGS:
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            if getattr(self, name).strip():
                raise ValueError(f"set VIGIL_{name.upper()} or VIGIL_{name.upper()}_FILE, not both")
            try:
                text = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"VIGIL_{name.upper()}_FILE: cannot read {path}: {exc}") from None
            setattr(self, name, text)
        return self

    @model_validator(mode="after")
    def _fast_before_slow(self) -> Settings:
        if self.macd_fast >= self.macd_slow:
            raise ValueError(
                f"VIGIL_MACD_FAST ({self.macd_fast}) must be smaller than "
                f"VIGIL_MACD_SLOW ({self.macd_slow})"
            )
        return self

    @field_validator(
        "nbp_base_url", "coingecko_base_url", "google_books_base_url", "open_library_base_url"
    )
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def effective_broker_url(self) -> str:
        """Where jobs are sent in the distributed mode ("" = no broker: jobs run in-process)."""
        return self.broker_url.strip() or self.redis_url.strip()

    @property
    def effective_database_url(self) -> str:
        """The database URL with the embedded default and the psycopg 3 driver filled in."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite:///{(self.data_dir / 'vigil.db').as_posix()}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
