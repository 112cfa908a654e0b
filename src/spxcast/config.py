"""The one Settings object.

Precedence, lowest first: defaults < ``spxcast.toml`` < environment ``SPXCAST_*`` (nested with ``__``,
e.g. ``SPXCAST_TRAINING__TRIALS_COARSE=5``) < CLI flags (passed as init arguments). Build it once per
process at the entry point with :func:`load_settings` and pass it (or one section of it) down explicitly.
"""

from __future__ import annotations

import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from spxcast.errors import ConfigError, redact, register_secret
from spxcast.timeutil import bar_minutes, check_granularity, horizon_bars

CONFIG_FILE_ENV = "SPXCAST_CONFIG"
DEFAULT_CONFIG_FILE = Path("spxcast.toml")


class DatabaseSettings(BaseModel):
    """The app database (pipeline runs, task runs, audit trail, prediction log)."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<home>/spxcast.db. PostgreSQL: postgresql+psycopg://…",
    )
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)


class LakeSettings(BaseModel):
    """Where the Delta tables live."""

    root: str | None = Field(default=None, description="Local path or s3:// URL; default <home>/lake")
    storage_options: dict[str, str] = Field(default_factory=dict, description="deltalake storage options")


class SyntheticMarketSettings(BaseModel):
    """The embedded synthetic SPX500 generator (seeded, on the OANDA CFD calendar)."""

    start: str = Field(default="2024-01-01", description="First day generated (UTC)")
    days: int = Field(default=365, ge=1, description="Calendar days generated")
    base_price: float = Field(default=4700.0, gt=0)
    annual_vol: float = Field(default=0.16, gt=0, description="Target annualised volatility")
    with_bid_ask: bool = True
    planted_signal: bool = Field(
        default=False, description="Add a predictable drift after news events and record the oracle"
    )
    planted_strength: float = Field(
        default=1.0, ge=0, description="Scale of the planted drift (1.0 = documented default strength)"
    )
    planted_tau_minutes: float = Field(default=30.0, gt=0, description="Decay time of the planted drift")
    events_per_session: float = Field(default=8.0, ge=0, description="Mean number of events per session")
    spread_bps: float = Field(default=1.0, ge=0, description="Typical bid/ask spread in basis points")


class FilesSourceSettings(BaseModel):
    """Import of users' own candle files (CSV, Parquet, NDJSON)."""

    path: str | None = None
    format: Literal["auto", "csv", "parquet", "ndjson"] = "auto"
    columns: dict[str, str] = Field(
        default_factory=dict, description="Map from bronze column (ts, open, …) to the file's column"
    )
    timezone: str = Field(default="UTC", description="Timezone of naive timestamps in the file")
    batch_rows: int = Field(default=500_000, ge=1, description="Rows validated and committed per batch")


class OandaSettings(BaseModel):
    """OANDA v20 REST. The token is read from the environment (SPXCAST_OANDA__TOKEN), never logged."""

    token: SecretStr | None = None
    environment: Literal["practice", "live"] = "practice"
    base_url: str | None = Field(default=None, description="Override of the REST base URL (tests, proxies)")
    price: str = Field(default="MBA", description="M (mid), B (bid), A (ask) in any combination")
    max_count: int = Field(default=5000, ge=1, le=5000)
    max_retries: int = Field(default=6, ge=0)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)

    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.environment == "live":
            return "https://api-fxtrade.oanda.com"
        return "https://api-fxpractice.oanda.com"


class MarketSettings(BaseModel):
    """Market-data ingestion."""

    source: Literal["synthetic", "oanda", "files"] = "synthetic"
    start: str | None = Field(default=None, description="Range start (UTC); default depends on the source")
    end: str | None = Field(default=None, description="Range end (UTC, exclusive)")
    chunk_days: int = Field(default=30, ge=1, description="Days committed to the lake per atomic write")
    synthetic: SyntheticMarketSettings = Field(default_factory=SyntheticMarketSettings)
    files: FilesSourceSettings = Field(default_factory=FilesSourceSettings)


class QualitySettings(BaseModel):
    """Validation of bronze data."""

    max_future_skew_s: float = Field(default=120.0, ge=0, description="Tolerated clock skew for future bars")
    max_quarantine_fraction: float = Field(
        default=0.05, ge=0, le=1, description="validate_market fails when more of the input was quarantined"
    )


class NewsSettings(BaseModel):
    """News ingestion: the source, its range, and the rules applied to every article."""

    source: Literal["synthetic", "gdelt", "rss", "files", "none"] = Field(
        default="synthetic", description="Where news comes from; none: market-only runs ingest no news"
    )
    start: str | None = Field(
        default=None, description="Range start (UTC) for backfills; default: the synthetic market's range"
    )
    end: str | None = Field(default=None, description="Range end (UTC, exclusive) for backfills")
    query: str = Field(default='("S&P 500" OR "stock market" OR "Federal Reserve" OR "Wall Street")')
    feeds: list[str] = Field(default_factory=list, description="RSS/Atom feed URLs")
    files_path: str | None = None
    columns: dict[str, str] = Field(
        default_factory=dict, description="Map from bronze column (url, title, published_at, …) to the file's"
    )
    gdelt_base_url: str = "https://api.gdeltproject.org/api/v2/doc/doc"
    gdelt_max_records: int = Field(default=250, ge=1, le=250, description="maxrecords per GDELT call")
    gdelt_min_window_s: float = Field(
        default=60.0, gt=0, description="A full GDELT window shorter than this is not split further (logged)"
    )
    politeness_delay_s: float = Field(default=1.0, ge=0, description="Pause between two requests to one host")
    max_retries: int = Field(default=5, ge=0, description="Retries of a failed request (5xx, 429, network)")
    backoff_base_s: float = Field(default=1.0, ge=0, description="First retry delay; doubles per retry")
    backoff_max_s: float = Field(default=30.0, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)
    backfill_latency_minutes: float = Field(
        default=5.0, ge=0, description="Added to max(published, crawled) to give received_at on backfills"
    )
    title_dedup_hours: float = Field(
        default=6.0, gt=0, description="Equal normalised titles received closer than this are one story"
    )
    relevance_terms: list[str] = Field(
        default_factory=lambda: [
            "s&p 500",
            "s&p",
            "stocks",
            "stock market",
            "wall street",
            "fed",
            "federal reserve",
            "inflation",
            "rates",
            "earnings",
            "nasdaq",
            "dow",
            "treasury",
            "yields",
            "recession",
            "economy",
            "jobs",
        ],
        description="An article is kept when its title or summary contains one of these as whole words",
    )
    synthetic_articles_per_day: float = Field(
        default=60.0, ge=0, description="Mean background articles per weekday (Poisson, intraday seasonality)"
    )
    synthetic_duplicate_rate: float = Field(
        default=0.3, ge=0, le=1, description="Share of synthetic stories that are syndicated or re-posted"
    )


class SentimentSettings(BaseModel):
    """News sentiment scoring."""

    scorer: Literal["lexicon", "finbert"] = "lexicon"
    finbert_model: str = Field(
        default="ProsusAI/finbert",
        description="Local directory or hub id of a sequence-classification model; never downloaded",
    )
    max_length: int = Field(default=64, ge=8, description="Tokens per text (headlines fit in 64)")
    batch_size: int = Field(default=64, ge=1)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    quantize_int8: bool = Field(default=False, description="int8 dynamic quantisation of Linear layers (CPU)")
    dtype: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="Model dtype; bfloat16 is faster on GPUs and CPUs with AVX-512 BF16/AMX",
    )


class FeatureSettings(BaseModel):
    """Feature and label construction."""

    label_tolerance_minutes: float = Field(
        default=0.0, ge=0, description="A label exists when a bar starts within this tolerance of ts + H"
    )
    use_news: bool = Field(
        default=True,
        description="Use news features when the lake holds news; false (--no-news): market features only",
    )


class TrainingSettings(BaseModel):
    """Training, tuning and evaluation."""

    models: list[str] = Field(default_factory=lambda: ["lightgbm", "xgboost", "ar"])
    trials_coarse: int = Field(default=20, ge=0)
    trials_fine: int = Field(default=30, ge=0)
    split_fractions: tuple[float, float, float, float] = (0.60, 0.15, 0.15, 0.10)
    oot2_rows: int | None = Field(
        default=None, ge=0, description="OOT2 = this many most recent labelled rows; unset: oot2_fraction"
    )
    oot2_fraction: float = Field(
        default=0.03, ge=0, lt=0.5, description="OOT2 = this share of the labelled rows (most recent)"
    )
    tune_share: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Share of the validation rows (the first ones) that Optuna and early stopping use; "
        "selection tests the candidates on the rest, which nothing was tuned on",
    )
    tune_max_rows: int = Field(default=150_000, ge=1000, description="Tune on the most recent rows of train")
    optuna_storage: str | None = Field(default=None, description="Optuna RDB URL; in-memory when unset")
    trial_workers: int = Field(
        default=1,
        ge=1,
        description="Processes running the Optuna trials of each study together (each train task starts "
        "trial_workers - 1 more); > 1 needs optuna_storage, which they share",
    )
    cost_bps: float = Field(default=1.0, ge=0, description="Round-trip trading cost in basis points")
    n_jobs: int = Field(default=1, ge=1, description="Threads per boosting model")
    max_rounds: int = Field(default=500, ge=1, description="Most boosting rounds per fit or trial")
    early_stopping_rounds: int = Field(default=20, ge=1, description="Rounds without valid improvement")
    ar_max_lags: int = Field(default=6, ge=1, description="Largest AR order tried (lags of H-minute returns)")
    selection_dm_pvalue: float | None = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Selection needs DM p <= this against zero on valid (untouched by tuning); None: off",
    )

    @field_validator("split_fractions")
    @classmethod
    def _fractions_sum_to_one(cls, value: tuple[float, float, float, float]) -> tuple[float, ...]:
        if abs(sum(value) - 1.0) > 1e-9 or min(value) <= 0:
            raise ValueError(f"split fractions must be positive and sum to 1, got {value}")
        return value


class RegistrySettings(BaseModel):
    """MLflow tracking and registry, and the promotion gates."""

    tracking_uri: str | None = Field(
        default=None,
        description="Default sqlite:///<home>/mlflow.db; or postgresql+psycopg://…; or an MLflow server URL",
    )
    artifact_root: str | None = Field(
        default=None,
        description="Where new experiments keep their artifacts; default <home>/mlartifacts, or with an "
        "MLflow server as tracking_uri the server's artifact store",
    )
    experiment: str = "spxcast"
    dm_pvalue: float = Field(default=0.05, gt=0, lt=1)
    max_test_rmse: float | None = Field(
        default=None, description="Absolute gate on test RMSE (percent units); unset: max_test_rmse_ratio"
    )
    max_test_rmse_ratio: float | None = Field(
        default=1.5,
        gt=0,
        description="Gate: test RMSE <= this x the zero forecast's test RMSE, a sanity ceiling that scales "
        "with bar size and horizon (1.5 = the old 0.18 % ceiling for 30-minute returns, whose zero RMSE "
        "is about 0.12 %); used when max_test_rmse is unset",
    )
    champion_tolerance: float = Field(
        default=0.0,
        ge=0,
        description="Fraction by which the challenger's recent-window RMSE may exceed the champion's",
    )
    shared_window_rows: int = Field(
        default=10_000,
        ge=10,
        description="Most recent labelled rows both challenger and champion predict, only rows after the "
        "challenger's training window (its valid split): rows neither model trained on, at any bar size",
    )
    require_manual_approval: bool = False
    actor: str | None = Field(default=None, description="Who the audit trail names; default the OS user")
    http_max_retries: int = Field(default=2, ge=0, description="Retries of a request to an MLflow server")
    http_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of a request to an MLflow server")


class DriftSettings(BaseModel):
    """Data drift: served feature vectors (current) against the champion's training rows (reference)."""

    window_bars: int = Field(default=240, ge=10, description="Current window: the last N served bars")
    method: Literal["wasserstein", "psi"] = Field(
        default="wasserstein",
        description="Effect size: normalised Wasserstein-1 or PSI over reference deciles",
    )
    per_feature_method: dict[str, Literal["wasserstein", "psi"]] = Field(default_factory=dict)
    alpha: float = Field(
        default=0.0005,
        gt=0,
        lt=0.5,
        description="False-alarm probability of one check of one feature on stationary data",
    )
    per_feature_threshold: dict[str, float] = Field(
        default_factory=dict, description="Fixed thresholds that replace the calibrated one for a feature"
    )
    bootstrap_samples: int = Field(default=300, ge=50, description="Null windows drawn for the calibration")
    reference_rows: int = Field(
        default=50_000, ge=100, description="Most recent train rows used as reference"
    )
    report_rows: int = Field(default=5_000, ge=100, description="Reference rows sampled for the HTML report")
    report_features: int = Field(
        default=20,
        ge=1,
        description="Most features in the HTML report (the drifted, else the largest effects)",
    )


class AlertRule(BaseModel):
    """One alert rule: ``check`` names a monitoring finding (drift, drift_share, prediction_drift, decay,
    missing, bar_age, article_age, quarantine, shadow_better) or the live-loop supervision of the online
    DAG (live_lag, threshold in bars); ``threshold`` overrides the check's default."""

    check: str
    threshold: float | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown_minutes: float = Field(default=240.0, ge=0, description="No new alert for the same subject")


def _default_rules() -> list[AlertRule]:
    return [
        AlertRule(check="drift", severity="info", cooldown_minutes=1440),
        AlertRule(check="drift_share", threshold=0.3, severity="warning", cooldown_minutes=720),
        AlertRule(check="prediction_drift", severity="warning", cooldown_minutes=720),
        AlertRule(check="decay", threshold=0.2, severity="critical", cooldown_minutes=720),
        AlertRule(check="missing", threshold=0.05, severity="warning", cooldown_minutes=240),
        AlertRule(check="bar_age", threshold=10.0, severity="critical", cooldown_minutes=60),
        AlertRule(check="article_age", threshold=720.0, severity="warning", cooldown_minutes=720),
        AlertRule(check="quarantine", threshold=0.01, severity="warning", cooldown_minutes=720),
        AlertRule(check="shadow_better", severity="info", cooldown_minutes=1440),
        AlertRule(check="live_lag", threshold=5.0, severity="critical", cooldown_minutes=60),
    ]


class MonitoringSettings(BaseModel):
    """Monitoring: drift, realised performance, freshness, alerts and the retrain policy."""

    drift: DriftSettings = Field(default_factory=DriftSettings)
    performance_window_bars: int = Field(default=2_000, ge=10, description="Realised rows judged for decay")
    decay_pvalue: float = Field(default=0.01, gt=0, lt=1, description="Significance of the decay test")
    min_realised_rows: int = Field(default=200, ge=2, description="Fewer realised rows: no decay verdict")
    rules: list[AlertRule] = Field(default_factory=_default_rules)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "spxcast@localhost"
    email_to: list[str] = Field(default_factory=list)
    webhook_url: SecretStr | None = Field(default=None, description="Slack-compatible incoming webhook")
    channel_timeout_s: float = Field(default=10.0, gt=0)
    retrain_policy: Literal["off", "suggest", "automatic"] = Field(
        default="suggest",
        description="On a new decay or drift-share alert: off; suggest (the command in the message); "
        "automatic (the training DAG, the gates, the idle slot in shadow, promotion on live evidence)",
    )
    retrain_retry_minutes: float = Field(
        default=1440.0,
        gt=0,
        description="automatic: at most one retrain per this many minutes; while a decay or drift-share "
        "alert stays open and the last retrain brought no challenger to the shadow slot, retrain again "
        "after this long",
    )
    serving_url: str | None = Field(
        default=None,
        description="Base URL of the serving API whose admin routes (serving.admin_key) the retrain loop "
        "deploys through; unset: a new challenger is recorded as awaiting deploy, with the command",
    )
    promote_min_rows: int = Field(default=500, ge=10, description="Live rows both slots scored, at least")
    promote_pvalue: float = Field(default=0.05, gt=0, lt=1, description="Paired test: challenger better")
    promote_max_p99_latency_ms: float = Field(default=250.0, gt=0)
    promote_max_error_rate: float = Field(default=0.01, ge=0, le=1)


class ServingSettings(BaseModel):
    """The prediction API (``spxcast serve``). The admin key is read from SPXCAST_SERVING__ADMIN_KEY, never
    logged; without one the admin routes (deploy, weights, shadow, rollback) are disabled."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    admin_key: SecretStr | None = None
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins; empty = none")
    max_request_bytes: int = Field(default=65_536, ge=1024, description="Larger request bodies get 413")
    interval_level: float = Field(default=0.9, gt=0, lt=1, description="Nominal conformal coverage")
    aci_gamma: float = Field(default=0.02, ge=0, le=1, description="Step of adaptive conformal inference")
    calibration_rows: int = Field(default=2000, ge=20, description="Held-out residuals kept for conformal")
    replay_rows: int = Field(default=200, ge=1, description="Recorded predictions replayed at deploy")
    log_batch_rows: int = Field(default=500, ge=1, description="Prediction rows written per transaction")
    log_flush_s: float = Field(default=0.2, gt=0, description="Longest a logged row waits in the queue")
    spool_path: str | None = Field(default=None, description="Outage spool file; default <home>/serving")
    feature_refresh_s: float = Field(default=5.0, gt=0, description="How often new gold rows are looked for")


#: Airflow schedules of the DAGs that have one unless configured otherwise (UTC cron or Airflow presets).
DEFAULT_SCHEDULES = {
    "training": "@daily",
    "ingest": "*/15 * * * *",
    "monitoring": "@hourly",
    "online": "*/5 * * * *",
}


class PipelineSettings(BaseModel):
    """The local DAG runner and the Airflow DAG files generated from the same spec."""

    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    default_retries: int = Field(default=1, ge=0)
    schedules: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_SCHEDULES),
        description="Airflow schedule per DAG name (cron or a preset such as @daily), merged over the "
        "defaults; '' or a DAG not named here: runs only when triggered",
    )

    @field_validator("schedules")
    @classmethod
    def _over_default_schedules(cls, value: dict[str, str]) -> dict[str, str]:
        # A source (toml, env) setting one DAG's schedule must not drop the other DAGs' defaults.
        return {**DEFAULT_SCHEDULES, **value}


class LiveSettings(BaseModel):
    """The live loop (``spxcast live``, ``spxcast serve --live``): sources, publishing, feature store."""

    source: Literal["oanda", "files", "replay"] = Field(
        default="oanda", description="Where new candles come from (replay: a stored range of bronze.candles)"
    )
    poll_s: float = Field(default=5.0, gt=0, description="Seconds between polls of the candle source")
    files_dir: str | None = Field(default=None, description="Directory watched for new candle files")
    news_poll_s: float = Field(default=300.0, gt=0, description="Seconds between news polls (news.source)")
    redis_url: str | None = Field(
        default=None, description="Redis for pub/sub to API replicas and the Feast online store; none = local"
    )
    channel: str = Field(default="spxcast:market-stream", description="Redis pub/sub channel of the stream")
    client_queue: int = Field(default=256, ge=1, description="Frames queued per WebSocket client before drop")
    feature_store: Literal["none", "sqlite", "redis"] = Field(
        default="sqlite", description="Feast online store the loop pushes to (redis needs redis_url)"
    )
    compact_every: int = Field(
        default=100,
        ge=0,
        description="Polls with new bars between two compactions of bronze.candles by the loop (each poll "
        "merges a small file; 0 = never)",
    )
    feature_push_interval_s: float = Field(
        default=1.0,
        ge=0,
        description="Least seconds between two pushes to the online store; the newest vector of the bars "
        "in between is written (the store keeps one per series)",
    )


class DashboardSettings(BaseModel):
    """The Streamlit dashboard (``spxcast dashboard``): a client of the API at ``api_url`` only."""

    api_url: str = Field(default="http://127.0.0.1:8000", description="Base URL of the spxcast API")
    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=0, le=65535)
    refresh_s: float = Field(default=5.0, ge=1, description="How often the live page polls the API")
    timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one API request")


class Settings(BaseSettings):
    """Effective configuration of one spxcast process."""

    model_config = SettingsConfigDict(
        env_prefix="SPXCAST_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Field(default=Path(".spxcast"), description="Holds the lake, SQLite files and MLflow store")
    instrument: str = "SPX500_USD"
    granularity: str = "M1"
    horizon_minutes: int = Field(
        default=30, ge=1, description="Horizon in minutes (labels by time); derived when horizon_bars is set"
    )
    horizon_bars: int | None = Field(
        default=None,
        ge=1,
        description="Horizon in bars: the label is the N-th next bar on the trading calendar (Friday -> "
        "Monday at D); unset: the horizon is horizon_minutes",
    )
    calendar: str = Field(
        default="auto",
        description="Trading calendar: auto (FX 24x5 for currency pairs, else the OANDA CFD session), cfd, "
        "fx, or an exchange code of the exchange_calendars library (XNYS, XLON, ...) with its holidays",
    )
    seed: int = 42
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)
    oanda: OandaSettings = Field(default_factory=OandaSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    news: NewsSettings = Field(default_factory=NewsSettings)
    sentiment: SentimentSettings = Field(default_factory=SentimentSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @field_validator("granularity")
    @classmethod
    def _known_granularity(cls, value: str) -> str:
        try:
            return check_granularity(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _horizon_in_bars(self) -> Settings:
        """With ``horizon_bars`` the horizon in minutes is derived (N bar lengths, a nominal length)."""
        if self.horizon_bars is not None:
            derived = round(self.horizon_bars * bar_minutes(self.granularity))
            if "horizon_minutes" in self.model_fields_set and self.horizon_minutes != derived:
                raise ValueError(
                    f"set horizon_minutes or horizon_bars, not both: {self.horizon_minutes} min is not "
                    f"{self.horizon_bars} {self.granularity} bars"
                )
            self.horizon_minutes = derived
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _EXPLICIT_CONFIG_FILE.get() or _config_file()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def horizon_bar_count(self) -> int:
        """Bars in the horizon (``horizon_bars``, or the whole number of bars in ``horizon_minutes``)."""
        return self.horizon_bars or horizon_bars(self.horizon_minutes, self.granularity)

    def db_url(self) -> str:
        return self.db.url or f"sqlite:///{(self.home / 'spxcast.db').resolve()}"

    def lake_root(self) -> str:
        return self.lake.root or str((self.home / "lake").resolve())

    def tracking_uri(self) -> str:
        return self.registry.tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def mlflow_artifact_root(self) -> str | None:
        """Where new experiments keep their artifacts: ``registry.artifact_root``; unset,
        ``<home>/mlartifacts`` with a local store, and None with a tracking server (it stores them itself:
        ``mlflow server --serve-artifacts``, so clients need no access to its volume)."""
        if self.registry.artifact_root:
            return self.registry.artifact_root
        if self.tracking_uri().startswith(("http://", "https://")):
            return None
        return str((self.home / "mlartifacts").resolve())

    def artifacts_dir(self) -> Path:
        return (self.home / "artifacts").resolve()


# A config file passed to load_settings, visible only while that call builds its Settings.
_EXPLICIT_CONFIG_FILE: ContextVar[Path | None] = ContextVar("spxcast_config_file", default=None)


def _config_file() -> Path | None:
    """The config file named by SPXCAST_CONFIG, else ./spxcast.toml when present."""
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} (from {CONFIG_FILE_ENV}) does not exist")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the effective settings; ``overrides`` are CLI flags (highest precedence); ``None`` is ignored.

    Nested overrides use dotted keys: ``load_settings(**{"training.trials_coarse": 3})``.
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist; pass an existing spxcast.toml")
    init: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        target = init
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    token = _EXPLICIT_CONFIG_FILE.set(config_file)
    try:
        settings = Settings(**init)
        register_secrets(settings)
        return settings
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])} ({_origin(err['loc'], init, config_file)}): {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
    except tomllib.TOMLDecodeError as exc:
        path = config_file or _config_file()
        raise ConfigError(f"config file {path} is not valid TOML: {exc}; fix that line") from exc
    except SettingsError as exc:
        # pydantic-settings could not decode an environment variable (e.g. bad JSON for a table).
        field = re.search(r'field "([^"]+)"', str(exc))
        names = _env_names((field[1],), nested=True) if field else []
        named = ", ".join(names) or "an SPXCAST_* environment variable"
        raise ConfigError(f"cannot read {named}: {exc}; a table takes JSON such as '{{\"key\": 1}}'") from exc
    finally:
        _EXPLICIT_CONFIG_FILE.reset(token)


def _origin(loc: tuple[int | str, ...], init: dict[str, Any], config_file: Path | None) -> str:
    """Where the value at ``loc`` came from, by precedence: a flag, an SPXCAST_* variable, the config file."""
    target: Any = init
    for part in loc:
        target = target.get(str(part), _MISSING) if isinstance(target, dict) else _MISSING
    if target is not _MISSING:
        return "from a command-line option"
    names = _env_names(tuple(str(p) for p in loc))
    if names:
        return f"from environment variable {names[0]}"
    path = config_file or _config_file()
    if path is not None:
        line = _toml_line(path, [str(p) for p in loc])
        return f"from {path}" + (f" line {line}" if line else "")
    return "default"


_MISSING = object()


def _env_names(loc: tuple[str, ...], nested: bool = False) -> list[str]:
    """SPXCAST_* variables that set ``loc`` or one of its parents (``SPXCAST_TRAINING__TRIALS``); with
    ``nested``, also those that set a field inside ``loc``."""
    wanted = {"SPXCAST_" + "__".join(loc[:n]).upper() for n in range(1, len(loc) + 1)}
    inside = "SPXCAST_" + "__".join(loc).upper() + "__"
    return sorted(
        name for name in os.environ if name.upper() in wanted or (nested and name.upper().startswith(inside))
    )


def _toml_line(path: Path, loc: list[str]) -> int | None:
    """Line number of the key ``loc`` in a TOML file (``[a]`` then ``b = …``, or ``a.b = …``), if found."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    table: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        header = re.fullmatch(r"\[\s*([^\]]+?)\s*\]", line)
        if header:
            table = [part.strip().strip('"') for part in header[1].split(".")]
            continue
        key = re.match(r"([\w.\"' -]+?)\s*=", line)
        if (
            key
            and table + [p.strip().strip('"') for p in key[1].split(".")]
            == loc[: len(table) + 1 + key[1].count(".")]
        ):
            return number
    return None


def mask_secrets(value: Any) -> Any:
    """Return a JSON-able copy of a settings dump with secrets and URL passwords masked."""
    if isinstance(value, SecretStr):
        return "**********" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return redact(value)
    return value


def register_secrets(settings: Settings) -> None:
    """Register every secret setting's value with :func:`spxcast.errors.register_secret` (messages,
    logs and recorded errors of this process then never show it)."""

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                register_secret(value.get_secret_value())
            elif isinstance(value, BaseModel):
                walk(value)

    walk(settings)


def effective_config(settings: Settings) -> dict[str, Any]:
    """The effective configuration, secrets masked, with derived locations filled in."""
    dumped = mask_secrets(settings.model_dump())
    dumped["db"]["url"] = mask_secrets(settings.db_url())
    dumped["lake"]["root"] = settings.lake_root()
    dumped["registry"]["tracking_uri"] = mask_secrets(settings.tracking_uri())
    dumped["registry"]["artifact_root"] = settings.mlflow_artifact_root()
    return dumped
