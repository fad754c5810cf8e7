"""One Settings object for the whole process, read from the environment (prefix ``VIGIL_``)
and an optional ``.env`` file. Every setting has a safe default for the embedded mode."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.core.notify import WebhookTarget
from vigil.core.secrets import VaultConfig, read_secret_file, read_vault

#: Every secret setting. Each may come from its environment variable VIGIL_<NAME>, from a file
#: named by VIGIL_<NAME>_FILE (Docker and Kubernetes secrets) or from Vault (VIGIL_VAULT_*);
#: docs/deploy.md "Secrets" gives the precedence.
SECRET_SETTINGS = (
    "database_url",
    "redis_url",
    "broker_url",
    "jwt_secret",
    "jwt_previous_secrets",
    "admin_password",
    "network_secret_key",
    "network_previous_secret_keys",
    "coingecko_api_key",
    "google_books_api_key",
    "webhooks",
    "backup_s3_access_key_id",
    "backup_s3_secret_access_key",
    "vault_token",
)
#: Secret settings Vault cannot provide (they are how Vault is reached).
_NOT_FROM_VAULT = frozenset({"vault_token"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- platform -----------------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Where the embedded SQLite file lives.")
    # URLs may hold passwords: never in the repr (nor logged).
    database_url: str = Field(
        "", repr=False, description="SQLAlchemy URL; empty means sqlite:///<data_dir>/vigil.db."
    )
    redis_url: str = Field(
        "", repr=False, description="Redis URL; empty means no Redis (in-process bus)."
    )
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
    ops_alerts_retention_days: int = Field(
        30,
        ge=0,
        description="Resolved Alertmanager alerts received by Vigil are kept this many days "
        "after they ended (0: forever).",
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
    coingecko_api_key_file: Path | None = None
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
    google_books_api_key_file: Path | None = None
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
        repr=False,  # webhook URLs carry tokens
        description='Where alerts are sent (JSON list): [{"url": "https://…", "format": '
        '"generic" | "slack" | "discord" | "alertmanager"}]. Empty: alerts are only stored '
        "and logged. Or VIGIL_WEBHOOKS_FILE (the same JSON in a file).",
    )
    webhooks_file: Path | None = None
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
    network_alert_eval_seconds: int = Field(
        60,
        ge=5,
        le=3600,
        description="How often the network.alerts.evaluate job runs every alert rule over "
        "the latest samples (the sweeps also evaluate after each poll).",
    )
    network_alert_repeat_minutes: float = Field(
        240,
        ge=0,
        le=10080,
        description="A firing alert that nobody acknowledged is notified again this often "
        "(0: never).",
    )
    network_rollup_tick_seconds: int = Field(
        300, ge=10, le=86400, description="How often the network.rollup job runs."
    )
    network_rollup_grace_seconds: int = Field(
        120,
        ge=0,
        le=3600,
        description="A 5 min bucket is rolled up once it ended this long ago (late samples).",
    )
    network_rollup_batch_buckets: int = Field(
        12,
        ge=1,
        le=10000,
        description="Buckets rolled up per transaction (a killed job loses at most one batch "
        "of work, never data).",
    )
    network_raw_retention_days: float = Field(
        7, gt=0, le=3650, description="Raw samples are kept this long (once rolled up)."
    )
    network_5m_retention_days: float = Field(
        90, gt=0, le=3650, description="5 min rollups are kept this long (once rolled up)."
    )
    network_1h_retention_days: float = Field(
        730, gt=0, le=36500, description="1 h rollups are kept this long."
    )

    # --- distributed roles: events, Celery, the scheduler's lock ----------------------------
    event_channels: dict[str, str] = Field(
        default_factory=dict,
        description="Redis pub/sub channel per event topic (JSON object); a topic not listed "
        'uses its own name as the channel, e.g. {"rates.ingested": "prod.rates.ingested"}.',
    )
    broker_url: str = Field(
        "",
        repr=False,
        description="Celery broker of `vigil worker` and `vigil scheduler` (empty: Redis).",
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

    # --- secrets from Vault (vigil.core.secrets; docs/deploy.md "Secrets") --------------------
    vault_addr: str = Field(
        "",
        description="Vault (or OpenBao) address, e.g. https://vault.example.com:8200. Set: the "
        "secret settings not given by a variable or a file are read once, at start-up, from "
        "the KV v2 secret VIGIL_VAULT_MOUNT/VIGIL_VAULT_PATH (keys named like the settings: "
        "database_url or database-url). Empty: no Vault.",
    )
    vault_auth: Literal["token", "kubernetes"] = Field(
        "token", description="token (VIGIL_VAULT_TOKEN) or kubernetes (VIGIL_VAULT_ROLE)."
    )
    vault_token: SecretStr = Field(
        SecretStr(""), description="Vault token (token auth). Or VIGIL_VAULT_TOKEN_FILE."
    )
    vault_token_file: Path | None = None
    vault_role: str = Field("", description="Vault role of the Kubernetes auth method.")
    vault_kubernetes_mount: str = Field("kubernetes", description="Kubernetes auth mount.")
    vault_kubernetes_token_path: Path = Field(
        Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        description="The service account token that Kubernetes auth presents.",
    )
    vault_mount: str = Field("secret", description="KV version 2 secrets engine mount.")
    vault_path: str = Field("vigil", description="Path of Vigil's secret in that mount.")
    vault_namespace: str = Field("", description="Vault Enterprise namespace (empty: none).")
    vault_ca_cert: Path | None = Field(None, description="CA bundle for Vault's certificate.")
    vault_timeout_seconds: float = Field(5.0, gt=0, le=120)

    # --- backups (vigil backup / vigil restore; docs/DISASTER_RECOVERY.md) -------------------
    backup_s3_endpoint_url: str = Field(
        "", description="S3-compatible endpoint (MinIO, Ceph, …); empty: AWS S3."
    )
    backup_s3_region: str = Field("us-east-1", description="S3 region.")
    backup_s3_bucket: str = Field("", description="Bucket the dumps go to (must exist).")
    backup_s3_prefix: str = Field(
        "vigil/", description="Key prefix of the dumps, e.g. 'prod/vigil/'."
    )
    backup_s3_access_key_id: SecretStr = Field(
        SecretStr(""),
        description="S3 access key (empty: boto3's usual chain, e.g. an IAM role). Or "
        "VIGIL_BACKUP_S3_ACCESS_KEY_ID_FILE.",
    )
    backup_s3_access_key_id_file: Path | None = None
    backup_s3_secret_access_key: SecretStr = Field(
        SecretStr(""), description="S3 secret key. Or VIGIL_BACKUP_S3_SECRET_ACCESS_KEY_FILE."
    )
    backup_s3_secret_access_key_file: Path | None = None
    backup_keep_last: int = Field(
        7, ge=0, description="Retention: the newest N dumps are always kept (0: no such rule)."
    )
    backup_keep_days: int = Field(
        30,
        ge=0,
        description="Retention: dumps younger than this many days are kept (0: no such rule). "
        "A dump kept by neither rule is deleted after each backup; both 0: none deleted.",
    )
    backup_dir: Path | None = Field(
        None, description="Where the dump is written before the upload (default: TMPDIR)."
    )

    @model_validator(mode="after")
    def _secrets_from_files_and_vault(self) -> Settings:
        """Secret settings not given as a variable: from VIGIL_<NAME>_FILE (never both), then,
        with VIGIL_VAULT_ADDR, from Vault for those still unset (read once, here)."""
        given = {name for name in SECRET_SETTINGS if self._has_value(name)}
        for name in SECRET_SETTINGS:
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            variable = f"VIGIL_{name.upper()}"
            if name in given:
                raise ValueError(f"set {variable} or {variable}_FILE, not both")
            self._set_secret(name, read_secret_file(path, f"{variable}_FILE"), variable)
            given.add(name)
        if self.vault_addr.strip():
            known = {n.replace("_", "-"): n for n in SECRET_SETTINGS if n not in _NOT_FROM_VAULT}
            for key, value in read_vault(self._vault_config()).items():
                setting = known.get(key.lower().removeprefix("vigil_").replace("_", "-"))
                if setting is None:
                    raise ValueError(
                        f"Vault secret {self.vault_mount}/{self.vault_path} has the key {key!r}, "
                        f"which is no secret setting; known keys: {', '.join(sorted(known))} "
                        "(or with underscores)"
                    )
                if setting not in given:
                    self._set_secret(setting, value, f"Vault key {key!r}")
        return self

    def _has_value(self, name: str) -> bool:
        value = getattr(self, name)
        if isinstance(value, SecretStr):
            return bool(value.get_secret_value())
        if isinstance(value, str):
            return bool(value.strip())
        return bool(value)

    def _set_secret(self, name: str, value: Any, source: str) -> None:
        field = type(self).model_fields[name]
        adapter: TypeAdapter[Any] = TypeAdapter(field.annotation or str)
        try:
            if field.annotation in (str, SecretStr) or not isinstance(value, str):
                parsed = adapter.validate_python(value)
            else:  # a structured setting (webhooks) given as text: JSON, like its variable
                parsed = adapter.validate_json(value)
        except ValidationError as exc:
            # The errors name the place, never the value (it is a secret).
            problems = "; ".join(f"{e['msg']} at {e['loc']}" for e in exc.errors())
            raise ValueError(f"{source}: not a valid {name}: {problems}") from None
        setattr(self, name, parsed)

    def _vault_config(self) -> VaultConfig:
        return VaultConfig(
            addr=self.vault_addr.strip(),
            mount=self.vault_mount.strip("/"),
            path=self.vault_path.strip("/"),
            auth=self.vault_auth,
            token=self.vault_token.get_secret_value(),
            role=self.vault_role,
            kubernetes_mount=self.vault_kubernetes_mount,
            kubernetes_token_path=self.vault_kubernetes_token_path,
            namespace=self.vault_namespace,
            ca_cert=self.vault_ca_cert,
            timeout=self.vault_timeout_seconds,
        )

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
