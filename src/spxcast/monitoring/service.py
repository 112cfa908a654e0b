"""The I/O edge of monitoring: read the prediction log, lake and registry; write the run, alerts and messages.

One monitoring run (``spxcast monitor run``, the ``monitoring`` DAG, the API reads its result):

1. the champion's reference (gold rows of its training window, its predictions on them, its test RMSE) and
   the drift calibration of that reference (cached per champion version and drift settings);
2. the served rows of the last ``drift.window_bars`` bars and the realised rows of the performance window
   from the ``predictions`` table; the newest bar, article and the quarantine rate from the lake;
3. :func:`spxcast.monitoring.checks.evaluate`; the run folder ``<artifacts>/monitoring/<run id>/`` gets
   ``summary.json``, ``drift.csv``, ``skill_daily.csv``, ``skill_weekly.csv`` and ``report.html``
   (Evidently's drift report); ``<artifacts>/monitoring/latest.json`` points at it;
4. alerts planned against the ``alerts`` table (dedup, cooldown), channels notified of the new ones;
5. the retrain policy: ``suggest`` names the suggestion in the message and summary; ``automatic`` runs the
   ``training`` DAG through the pipeline runner (a child run of the monitoring DAG's run), checks the
   registry's promotion gates on the version it registered, deploys that version to serving's idle slot in
   shadow through the API's admin routes (or records it as awaiting deploy, with the commands), and on
   every run promotes the shadow challenger once it beats the champion on the same live rows (paired test,
   minimum rows, latency and error limits). Every step is in the registry's audit trail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from spxcast.config import Settings
from spxcast.db import AlertRecord, connect
from spxcast.errors import SpxcastError
from spxcast.monitoring import alerts, checks, drift, notify, performance, retrain
from spxcast.timeutil import bar_length

log = logging.getLogger(__name__)

STATUSES = ("open", "acknowledged", "resolved")
_PLANNING_DAYS = 30


class MonitoringError(SpxcastError):
    """A monitoring run or an alert command cannot proceed (what is missing and what to do)."""


class AlertNotFound(MonitoringError):
    """No alert has the id asked for."""


class AlertConflict(MonitoringError):
    """The alert is already in the state asked for, or resolved (a resolved alert stays resolved)."""


class NoChampion(MonitoringError):
    """The registry has no champion yet: a run checks freshness and data quality only."""


@dataclass(frozen=True)
class ChampionReference:
    """The champion as monitoring needs it: ``reference`` = its training rows (features in time order) with
    a ``prediction`` column (its forecast on those rows, percent); ``test_rmse`` in percent."""

    model_name: str
    version: int
    features: tuple[str, ...]
    reference: pl.DataFrame
    test_rmse: float | None


ChampionLoader = Callable[[Settings], ChampionReference]
Trainer = Callable[[Settings, str], dict[str, Any]]
"""An automatic retrain: (settings, why) -> what it did (JSON-able)."""
Promoter = Callable[[Settings, datetime], dict[str, Any] | None]
"""A promotion attempt on live evidence at a moment: what it decided, or None (no challenger)."""


def monitoring_dir(settings: Settings) -> Path:
    return settings.artifacts_dir() / "monitoring"


# ----- the champion and its calibration


def load_champion(settings: Settings) -> ChampionReference:
    """The registry's champion, its training window from gold.features and its test RMSE."""
    import tempfile

    from spxcast.lake import Lake
    from spxcast.models.io import read_metadata
    from spxcast.registry.lifecycle import ModelRegistry
    from spxcast.registry.store import CHAMPION

    registry = ModelRegistry(settings)
    info = registry.by_alias(CHAMPION) if registry.exists() else None
    if info is None:
        raise NoChampion(
            "no champion model to monitor: train and promote one (spxcast train run; spxcast models promote)"
        )
    with tempfile.TemporaryDirectory(prefix="spxcast-monitor-") as scratch:
        directory = registry.download(info.version, Path(scratch))
        metadata = read_metadata(directory)
        model = registry.load(info.version, Path(scratch))
    window = metadata.get("training_window") or {}
    if "start" not in window or "end" not in window:
        raise MonitoringError(f"champion v{info.version} records no training window in its metadata")
    start, end = (datetime.fromisoformat(window[k]) for k in ("start", "end"))
    rows = (
        Lake.from_settings(settings)
        .scan("gold.features")
        .filter(
            (pl.col("instrument") == settings.instrument)
            & (pl.col("granularity") == settings.granularity)
            & pl.col("ts").is_between(start, end, closed="both")
        )
        .sort("ts")
        .collect()
        .tail(settings.monitoring.drift.reference_rows)
    )
    if rows.is_empty():
        raise MonitoringError(
            f"gold.features has no rows in champion v{info.version}'s training window {start} to {end}"
        )
    features = tuple(model.feature_names)
    reference = rows.select(features).with_columns(
        pl.Series(checks.PREDICTION, np.asarray(model.predict(rows), dtype=np.float64))
    )
    metrics = registry.metrics(info.version)
    test_rmse = metrics.get("test", {}).get("model", {}).get("rmse")
    return ChampionReference(registry.name, info.version, features, reference, test_rmse)


def calibration(
    settings: Settings, champion: ChampionReference
) -> tuple[list[drift.Threshold], dict[str, drift.Reference]]:
    """Drift thresholds and reference summaries of the champion's reference, cached under the monitoring
    folder per champion version and drift settings (recomputed when either changes)."""
    config = settings.monitoring.drift
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                champion.model_name,
                champion.version,
                champion.reference.height,
                config.model_dump(),
                settings.seed,
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    cache = monitoring_dir(settings) / "calibration" / f"v{champion.version}-{fingerprint}.json"
    if cache.exists():
        document = json.loads(cache.read_text())
        return (
            [drift.Threshold(**t) for t in document["thresholds"]],
            {
                k: drift.Reference(
                    quantiles=np.asarray(r["quantiles"]),
                    sd=float(r["sd"]),
                    edges=np.asarray(r["edges"]),
                    shares=np.asarray(r["shares"]),
                )
                for k, r in document["references"].items()
            },
        )
    names = [*champion.features, checks.PREDICTION]
    thresholds = drift.calibrate(
        champion.reference,
        names,
        window_bars=config.window_bars,
        alpha=config.alpha,
        samples=config.bootstrap_samples,
        seed=settings.seed,
        method=config.method,
        per_feature_method=config.per_feature_method,
        fixed=config.per_feature_threshold,
    )
    references = drift.references(champion.reference, names)
    document = {
        "thresholds": [asdict(t) for t in thresholds],
        "references": {k: {f: _listed(v) for f, v in asdict(r).items()} for k, r in references.items()},
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(document, default=_json_default))
    return thresholds, references


def _listed(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


# ----- the prediction log and the lake


_SCALARS = ("bar_ts", "created_at", "feature_as_of", "role", "model_version", "predicted_pct", "realised_pct")
_SERIES = "instrument = :instrument AND granularity = :granularity"


def read_log(engine: Engine, instrument: str, granularity: str, since: datetime) -> pl.DataFrame:
    """Rows of serving's ``predictions`` table for the series with ``bar_ts >= since``, without the
    feature vectors: bar_ts, created_at, feature_as_of (UTC), role, model_version, predicted_pct,
    realised_pct; in bar order."""
    sql = (
        f"SELECT {', '.join(_SCALARS)} FROM predictions WHERE {_SERIES} AND bar_ts >= :since ORDER BY bar_ts"
    )
    params = {"instrument": instrument, "granularity": granularity, "since": _stored(engine, since)}
    return _frame(_rows(engine, sql, params), [*_SCALARS])


def read_served_features(
    engine: Engine, instrument: str, granularity: str, features: Sequence[str], window_bars: int
) -> pl.DataFrame:
    """The last ``window_bars`` served bars: ``bar_ts``, ``predicted_pct`` and each feature as a Float64
    column (null when the model read a missing value), in time order."""
    sql = (
        f"SELECT bar_ts, predicted_pct, features FROM predictions WHERE {_SERIES} AND role = 'served' "
        "ORDER BY bar_ts DESC LIMIT :rows"
    )
    params = {"instrument": instrument, "granularity": granularity, "rows": 2 * window_bars}
    served = _frame(_rows(engine, sql, params), ["bar_ts", "predicted_pct", "features"])
    served = served.unique("bar_ts", keep="first").sort("bar_ts").tail(window_bars)
    dtype = pl.Struct({name: pl.Float64 for name in features})
    decoded = served["features"].str.json_decode(dtype) if served.height else pl.Series("features", [], dtype)
    return served.select("bar_ts", "predicted_pct").with_columns(decoded.alias("f")).unnest("f")


def _stored(engine: Engine, moment: datetime) -> Any:
    """``moment`` as the dialect stores a UTC timestamp (SQLite: SQLAlchemy's naive text form)."""
    if engine.dialect.name == "sqlite":
        return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def _rows(engine: Engine, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Raw rows (no per-value result processing: SQLite gives timestamps as text); none when serving has
    not created its ``predictions`` table in this database."""
    if not inspect(engine).has_table("predictions"):
        log.warning("the app database has no predictions table (serving never ran here): no served rows")
        return []
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params).all()]


_DTYPES: dict[str, Any] = {
    "role": pl.String,
    "model_version": pl.Int64,
    "predicted_pct": pl.Float64,
    "realised_pct": pl.Float64,
    "features": pl.String,
}
_TIMES = ("bar_ts", "created_at", "feature_as_of")


def _frame(rows: Sequence[tuple[Any, ...]], names: list[str]) -> pl.DataFrame:
    """Columns from raw rows; timestamps (text on SQLite, datetimes elsewhere) as UTC datetimes."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pl.DataFrame(
        [
            _utc_series(name, list(values))
            if name in _TIMES
            else pl.Series(name, list(values), _DTYPES[name])
            for name, values in zip(names, columns, strict=True)
        ]
    )


def _utc_series(name: str, values: list[Any]) -> pl.Series:
    raw = pl.Series(name, values, strict=False)
    if raw.dtype == pl.String:
        return raw.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    if isinstance(raw.dtype, pl.Datetime):
        zone = raw.dtype.time_zone
        return raw.dt.replace_time_zone("UTC") if zone is None else raw.dt.convert_time_zone("UTC")
    return raw.cast(pl.Datetime("us", "UTC"))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def lake_freshness(settings: Settings, now: datetime) -> tuple[datetime | None, datetime | None, int, int]:
    """(newest bar start, newest article received_at, bars accepted and quarantined in the last day)."""
    from spxcast.lake import Lake

    lake = Lake.from_settings(settings)
    since = now - timedelta(days=1)
    last_bar = last_article = None
    accepted = quarantined = 0
    if lake.exists("bronze.candles"):
        candles = lake.scan("bronze.candles").filter(
            (pl.col("instrument") == settings.instrument) & (pl.col("granularity") == settings.granularity)
        )
        row = candles.select(
            pl.col("ts").max().alias("last"), (pl.col("ingested_at") >= since).sum().alias("recent")
        ).collect()
        last_bar, accepted = row["last"][0], int(row["recent"][0] or 0)
    if lake.exists("bronze.news"):
        last_article = lake.scan("bronze.news").select(pl.col("received_at").max()).collect().item()
    if lake.exists("bronze.quarantine"):
        quarantined = int(
            lake.scan("bronze.quarantine")
            .filter((pl.col("table") == "bronze.candles") & (pl.col("ingested_at") >= since))
            .select(pl.len())
            .collect()
            .item()
        )
    return last_bar, last_article, accepted, quarantined


# ----- alerts in the app database


def known_alerts(engine: Engine, now: datetime) -> list[alerts.KnownAlert]:
    """Alerts still active, and those raised in the last 30 days (for cooldowns)."""
    since = now - timedelta(days=_PLANNING_DAYS)
    with Session(engine) as session:
        records = session.scalars(
            select(AlertRecord).where((AlertRecord.status != "resolved") | (AlertRecord.raised_at >= since))
        ).all()
        return [alerts.KnownAlert(r.id, r.key, r.status, _utc(r.raised_at)) for r in records]


def apply_plan(engine: Engine, plan: alerts.Plan, run_id: str, now: datetime) -> list[int]:
    """Write ``plan`` in one transaction; returns the ids of the opened alerts (in ``plan.open`` order)."""
    with Session(engine) as session, session.begin():
        opened = []
        for new in plan.open:
            f = new.finding
            record = AlertRecord(
                key=f.key,
                check=f.check,
                subject=f.subject,
                severity=new.severity,
                status="open",
                message=f.message,
                value=_finite(f.value),
                threshold=_finite(f.threshold),
                raised_at=now,
                last_seen=now,
                count=1,
                run_id=run_id,
            )
            session.add(record)
            opened.append(record)
        for alert_id, finding in plan.refresh:
            record = session.get_one(AlertRecord, alert_id)
            record.last_seen, record.count = now, record.count + 1
            record.value, record.message = _finite(finding.value), finding.message
        for alert_id in plan.resolve:
            record = session.get_one(AlertRecord, alert_id)
            record.status, record.resolved_at, record.resolved_by = "resolved", now, "monitoring"
        session.flush()
        return [r.id for r in opened]


def record_notified(engine: Engine, ids: Sequence[int], results: dict[str, str]) -> None:
    with Session(engine) as session, session.begin():
        for alert_id in ids:
            session.get_one(AlertRecord, alert_id).notified = json.dumps(results)


def list_alerts(engine: Engine, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first; ``status`` one of open, acknowledged, resolved (None: all)."""
    if status is not None and status not in STATUSES:
        raise MonitoringError(f"unknown alert status {status!r}; use one of {', '.join(STATUSES)}")
    query = select(AlertRecord).order_by(AlertRecord.id.desc()).limit(limit)
    if status is not None:
        query = query.where(AlertRecord.status == status)
    with Session(engine) as session:
        return [_alert_dict(r) for r in session.scalars(query).all()]


def set_status(engine: Engine, alert_id: int, status: str, actor: str, now: datetime) -> dict[str, Any]:
    """Acknowledge or resolve alert ``alert_id`` as ``actor`` at ``now`` (recorded on the alert).

    Raises :class:`AlertNotFound` for an unknown id and :class:`AlertConflict` for a resolved alert (it stays
    resolved) or a second acknowledgement (the first one is kept).
    """
    if status not in ("acknowledged", "resolved"):
        raise MonitoringError(f"an alert can be acknowledged or resolved, not {status!r}")
    with Session(engine) as session, session.begin():
        record = session.get(AlertRecord, alert_id)
        if record is None:
            raise AlertNotFound(f"no alert with id {alert_id}; list them with: spxcast monitor alerts")
        if record.status == "resolved":
            raise AlertConflict(
                f"alert {alert_id} is already resolved ({_by(record.resolved_by, record.resolved_at)})"
            )
        if record.status == status:  # a second acknowledgement would overwrite who saw it first
            first = _by(record.acknowledged_by, record.acknowledged_at)
            raise AlertConflict(f"alert {alert_id} is already acknowledged ({first})")
        record.status = status
        if status == "acknowledged":
            record.acknowledged_by, record.acknowledged_at = actor, now
        else:
            record.resolved_by, record.resolved_at = actor, now
        session.flush()
        return _alert_dict(record)


def _by(actor: str | None, at: datetime | None) -> str:
    when = "" if at is None else f" at {_utc(at):%Y-%m-%d %H:%M:%S} UTC"
    return f"by {actor or 'unknown'}{when}"


def _alert_dict(record: AlertRecord) -> dict[str, Any]:
    out = {c.name: getattr(record, c.name) for c in AlertRecord.__table__.columns}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in out.items()}


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def clean(value: Any) -> Any:
    """A JSON-able copy: non-finite floats become None, datetimes ISO text (JSON has no NaN or inf)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


# ----- the run


def write_report(
    path: Path,
    reference: pl.DataFrame,
    current: pl.DataFrame,
    drift_frame: pl.DataFrame,
    rows: int,
    seed: int,
    most: int = 20,
) -> None:
    """Evidently's drift report of the drifted features (else the largest effects) and the prediction, at
    most ``most`` of them, with the calibrated thresholds; the reference is sampled to ``rows`` rows."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    judged = drift_frame.filter(pl.col("statistic").is_not_null()).sort("statistic", descending=True)
    chosen = judged.filter(pl.col("drifted") | (pl.col("feature") == checks.PREDICTION))
    if chosen.height < min(10, most):
        chosen = pl.concat([chosen, judged.filter(~pl.col("drifted"))]).unique("feature", keep="first")
    chosen = chosen.sort("statistic", descending=True).head(most)
    columns = chosen["feature"].to_list()
    if not columns:
        path.write_text("<html><body>No drift statistics this run (no served rows).</body></html>")
        return
    sample = reference.select(columns).sample(min(rows, reference.height), seed=seed)
    definition = DataDefinition(numerical_columns=columns)
    preset = DataDriftPreset(
        columns=columns,
        per_column_method=dict(zip(columns, chosen["method"].to_list(), strict=True)),
        per_column_threshold=dict(zip(columns, chosen["threshold"].to_list(), strict=True)),
    )
    snapshot = Report([preset]).run(
        Dataset.from_pandas(current.select(columns).to_pandas(), data_definition=definition),
        Dataset.from_pandas(sample.to_pandas(), data_definition=definition),
    )
    snapshot.save_html(str(path))


def run_monitoring(
    settings: Settings,
    *,
    now: datetime | None = None,
    send: bool = True,
    report: bool = True,
    champion_loader: ChampionLoader = load_champion,
    engine: Engine | None = None,
    trainer: Trainer | None = None,
    promoter: Promoter | None = None,
) -> dict[str, Any]:
    """One monitoring run (see the module docstring); returns its summary (also in ``summary.json``).

    Under the ``automatic`` policy: ``trainer`` is what a new decay or drift-share alert calls
    (:func:`retrain_now`; None records the request as deferred), and ``promoter`` is asked on every run
    whether the shadow challenger now beats the champion on the live rows (:func:`auto_promote`).
    """
    now = now or datetime.now(UTC)
    config = settings.monitoring
    engine = engine or connect(settings.db_url(), settings.db.sqlite_busy_timeout_ms)
    try:
        champion: ChampionReference | None = champion_loader(settings)
    except NoChampion as exc:
        log.warning("%s; checking freshness only", exc)
        champion = None
    features = champion.features if champion is not None else ()
    thresholds, references = calibration(settings, champion) if champion is not None else ([], {})
    bar = bar_length(settings.granularity)
    horizon = settings.horizon_bar_count
    lookback = max(config.drift.window_bars, config.performance_window_bars + horizon) * 4 * bar
    since = now - max(lookback, timedelta(days=7))
    log_rows = read_log(engine, settings.instrument, settings.granularity, since)
    served = read_served_features(
        engine, settings.instrument, settings.granularity, features, config.drift.window_bars
    )
    realised = (
        log_rows.filter((pl.col("role") == "served") & pl.col("realised_pct").is_not_null())
        .unique("bar_ts", keep="last")
        .select("bar_ts", "predicted_pct", "realised_pct")
    )
    last_bar, last_article, accepted, quarantined = lake_freshness(settings, now)
    inputs = checks.Inputs(
        instrument=settings.instrument,
        calendar=settings.calendar,
        bar=bar,
        horizon_bars=horizon,
        features=features,
        served=served,
        realised=realised,
        paired=performance.paired_rows(log_rows),
        references=references,
        thresholds=thresholds,
        reference_rmse=champion.test_rmse if champion is not None else None,
        last_bar_ts=last_bar,
        last_article_at=last_article,
        news=settings.features.use_news and settings.news.source != "none",
        accepted=accepted,
        quarantined=quarantined,
    )
    outcome = checks.evaluate(inputs, config, now)

    run_id = f"monitor-{now:%Y%m%dT%H%M%S}"
    folder = monitoring_dir(settings) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    outcome.drift.write_csv(folder / "drift.csv")
    for name, frame in (("skill_daily", outcome.daily), ("skill_weekly", outcome.weekly)):
        if frame.height:
            frame.write_csv(folder / f"{name}.csv")
    report_path = folder / "report.html" if report and champion is not None else None
    if report_path is not None and champion is not None:
        write_report(
            report_path,
            champion.reference,
            served.rename({"predicted_pct": checks.PREDICTION}),
            outcome.drift,
            config.drift.report_rows,
            settings.seed,
            config.drift.report_features,
        )

    plan = alerts.plan(outcome.findings, known_alerts(engine, now), config.rules, now)
    opened_ids = apply_plan(engine, plan, run_id, now)
    action, reasons = retrain.retrain_action(
        config.retrain_policy,
        plan.open,
        [finding for _, finding in plan.refresh],
        last_retrain(settings),
        now,
        config.retrain_retry_minutes,
    )
    extra = []
    if action == "suggest":
        extra.append(f"Retraining suggested ({', '.join(reasons)}): run spxcast pipeline run training")
    elif action == "train":
        extra.append(
            f"Retraining started (policy automatic; {', '.join(reasons)}): the training DAG, the promotion "
            "gates, then the idle serving slot in shadow"
        )
    delivered: dict[str, str] = {}
    if plan.open and send:
        delivered = notify.notify(config, notify.compose(plan.open, run_id, report_path, extra))
        record_notified(engine, opened_ids, delivered)
    retrained: dict[str, Any] | None = None
    if action == "train":
        why = f"monitoring run {run_id}: {', '.join(reasons)}"
        retrained = trainer(settings, why) if trainer is not None else {"status": "deferred"}
        shadow = (retrained.get("shadow") or {}).get("status")
        _record_retrain(settings, now, shadow in ("deployed", "awaiting deploy"))
    promotion = (
        promoter(settings, now)
        if promoter is not None and config.retrain_policy == "automatic" and outcome.paired is not None
        else None
    )

    summary = {
        **outcome.summary,
        "run_id": run_id,
        "champion": None if champion is None else {"model": champion.model_name, "version": champion.version},
        "report": str(report_path) if report_path else None,
        "alerts_opened": [f.finding.key for f in plan.open],
        "alerts_open_refreshed": len(plan.refresh),
        "alerts_resolved": len(plan.resolve),
        "alerts_suppressed": [f.key for f in plan.suppressed],
        "channels": delivered,
        "retrain": {
            "policy": config.retrain_policy,
            "action": action,
            "reasons": reasons,
            "result": retrained,
        },
        "promotion": promotion,
    }
    summary = clean(summary)
    text_summary = json.dumps(summary, indent=2, allow_nan=False)
    (folder / "summary.json").write_text(text_summary)
    (monitoring_dir(settings) / "latest.json").write_text(text_summary)
    return summary


def _last_retrain_file(settings: Settings) -> Path:
    return monitoring_dir(settings) / "last_retrain.json"


def last_retrain(settings: Settings) -> retrain.LastRetrain | None:
    """The last automatic retrain of this home's monitoring (``<monitoring>/last_retrain.json``), or None."""
    path = _last_retrain_file(settings)
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    return retrain.LastRetrain(datetime.fromisoformat(document["at"]), bool(document["reached_shadow"]))


def _record_retrain(settings: Settings, at: datetime, reached_shadow: bool) -> None:
    document = {"at": at.isoformat(), "reached_shadow": reached_shadow}
    _last_retrain_file(settings).write_text(json.dumps(document))


def latest(settings: Settings) -> dict[str, Any] | None:
    """The summary of the newest monitoring run, or None when none ran."""
    path = monitoring_dir(settings) / "latest.json"
    return json.loads(path.read_text()) if path.exists() else None


def retrain_now(settings: Settings, why: str, *, parent: str | None = None) -> dict[str, Any]:
    """The automatic retrain: the ``training`` DAG through the pipeline runner, the registry's promotion
    gates on the version it registered, and that version in serving's idle slot in shadow.

    ``parent``: the pipeline run whose task asks (the ``monitoring`` DAG's task); the training run is its
    child under its hold on the home (:func:`spxcast.pipeline.runner.exclusive_home`). Refused when another
    run holds the home: the result says so with the command to run later. Each step lands in the
    registry's audit trail (``model_transitions``: ``retrain_gates``, ``shadow_deploy`` or
    ``awaiting_deploy``); the run itself in ``pipeline_runs``.
    """
    from spxcast.errors import PipelineError
    from spxcast.pipeline.runner import run_dag
    from spxcast.registry.lifecycle import ModelRegistry

    try:
        summary = run_dag(settings, "training", parent=parent)
    except PipelineError as exc:
        log.warning("automatic retrain not started: %s", exc)
        return {"status": "blocked", "error": str(exc), "commands": ["spxcast pipeline run training"]}
    result: dict[str, Any] = {"training_run": summary.run_id, "parent_run": parent, "status": summary.status}
    if summary.status != "succeeded":
        result["errors"] = {task: error.splitlines()[0] for task, error in summary.errors.items()}
        return result
    registered = summary.outputs.get("register_model", {})
    version = registered.get("version")
    result["registered"] = registered.get("message")
    if version is None:
        result["shadow"] = {"status": "no new version (no candidate beat the zero forecast)"}
        return result
    registry = ModelRegistry(settings)
    champion = registry.by_alias("champion")
    result["challenger"] = version
    if champion is not None and champion.version == version:
        result["shadow"] = {"status": f"v{version} is the champion already (nothing new was learnt)"}
        return result
    gates = registry.gates(version)
    result["gates"] = {"passed": gates.passed, "explain": gates.explain()}
    step = f"{why}; training run {summary.run_id}"
    registry.note(version, "retrain_gates", "monitoring", f"{step}: {gates.explain()}", gates)
    if not gates.passed:
        result["shadow"] = {"status": "not deployed: promotion gates failed"}
        return result
    result["shadow"] = deploy_to_serving(settings, version, f"shadow challenger: {step}", swap=False)
    deployed = result["shadow"]["status"] == "deployed"
    registry.note(
        version,
        "shadow_deploy" if deployed else "awaiting_deploy",
        "monitoring",
        f"{step}: {result['shadow']['status']}"
        + ("" if deployed else f"; run: {' && '.join(result['shadow']['commands'])}"),
    )
    return result


def deploy_to_serving(settings: Settings, version: int, reason: str, *, swap: bool) -> dict[str, Any]:
    """Load ``version`` into serving's idle slot through the API's admin routes (the server runs its
    fingerprint and replay checks and audits the slot change): ``swap`` makes it live, otherwise shadow
    mode is switched on so that it scores every request next to the live model.

    Needs ``monitoring.serving_url`` and ``serving.admin_key``; without them, or when the server refuses
    or cannot be reached, the result is ``awaiting deploy`` (or ``deploy failed``) with the commands a
    person runs. The admin key never appears in the result or the log.
    """
    from spxcast.api_client import Api
    from spxcast.errors import SpxcastError

    url, key = settings.monitoring.serving_url, settings.serving.admin_key
    commands = retrain.deploy_commands(version, reason, swap=swap, url=url)
    if not url or key is None or not key.get_secret_value():
        missing = "monitoring.serving_url" if not url else "serving.admin_key"
        return {"status": "awaiting deploy", "version": version, "why": f"no {missing}", "commands": commands}
    steps = [("deploy", {"version": version, "reason": reason, "swap": swap})]
    if not swap:
        steps.append(("shadow", {"enabled": True, "reason": reason}))
    api = Api(url, timeout_s=120)
    state: dict[str, Any] = {}
    for path, body in steps:
        try:
            state = api.admin(path, body, key.get_secret_value(), actor="monitoring")
        except SpxcastError as exc:  # unreachable, or the server refused (its detail, redacted)
            why = f"POST /admin/{path}: {exc}"
            log.warning("deploy of v%d failed: %s", version, why)
            return {"status": "deploy failed", "version": version, "why": why, "commands": commands}
    return {"status": "deployed", "version": version, **state}


def shadow_health(log_rows: pl.DataFrame) -> tuple[float, float]:
    """(p99 latency in ms, error rate) of the shadow model from the prediction log.

    Latency: how long after the live prediction of the same bar the shadow's was logged (``created_at``
    of the shadow row minus that of the served row, at least 0): the time the challenger adds on serving's
    path. Wall-clock differences only, so a replay of historical bars is judged like live traffic. Error
    rate: served bars since the shadow's first row without a shadow row (a shadow prediction that failed is
    not logged) over those served bars. Both inf/1.0 when it logged nothing.
    """
    shadow = log_rows.filter(pl.col("role") == "shadow")
    if shadow.is_empty():
        return math.inf, 1.0
    first = shadow["bar_ts"].min()
    served = log_rows.filter((pl.col("role") == "served") & (pl.col("bar_ts") >= first))
    if served.is_empty():
        return math.inf, 1.0
    lag = (
        shadow.group_by("bar_ts")
        .agg(pl.col("created_at").max().alias("shadow_at"))
        .join(served.group_by("bar_ts").agg(pl.col("created_at").min().alias("served_at")), on="bar_ts")
        .select(((pl.col("shadow_at") - pl.col("served_at")).dt.total_milliseconds()).clip(0).alias("ms"))
    )["ms"].drop_nulls()
    p99 = float(lag.quantile(0.99) or 0.0) if lag.len() else math.inf
    return p99, max(0.0, 1.0 - shadow["bar_ts"].n_unique() / served["bar_ts"].n_unique())


def promotion_check(
    settings: Settings,
    engine: Engine,
    now: datetime,
    force: bool = False,
    reason: str | None = None,
    versions: tuple[int, int] | None = None,
) -> tuple[retrain.Promotion, performance.Paired, dict[str, float]]:
    """Whether the shadow challenger may replace the champion on the live rows of the last 30 days.

    ``versions`` = (champion, challenger): only the champion's served rows and the challenger's shadow
    rows count (an earlier shadow model's rows are not the challenger's evidence).
    """
    config = settings.monitoring
    log_rows = read_log(
        engine, settings.instrument, settings.granularity, now - timedelta(days=_PLANNING_DAYS)
    )
    if versions is not None:
        log_rows = log_rows.filter(
            ((pl.col("role") == "served") & (pl.col("model_version") == versions[0]))
            | ((pl.col("role") == "shadow") & (pl.col("model_version") == versions[1]))
        )
    rows = performance.paired_rows(log_rows)
    horizon = settings.horizon_bar_count
    paired = performance.paired_test(
        rows["realised_pct"].to_numpy().astype(np.float64),
        rows["champion_pct"].to_numpy().astype(np.float64),
        rows["challenger_pct"].to_numpy().astype(np.float64),
        max(horizon - 1, 0),
    )
    latency, errors = shadow_health(log_rows)
    limits = retrain.PromotionLimits(
        config.promote_min_rows,
        config.promote_pvalue,
        config.promote_max_p99_latency_ms,
        config.promote_max_error_rate,
    )
    decision = retrain.promotion_decision(
        paired,
        challenger_p99_latency_ms=latency,
        challenger_error_rate=errors,
        limits=limits,
        force=force,
        reason=reason,
    )
    return decision, paired, {"p99_latency_ms": latency, "error_rate": errors}


def promote_challenger(
    settings: Settings,
    *,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Promote the registry's challenger when :func:`promotion_check` allows it on the live rows both
    versions scored (or a person forces it with a reason), then make it live in serving
    (:func:`deploy_to_serving` with ``swap``); the registry's gates and audit trail apply as for
    ``spxcast models promote``."""
    from spxcast.registry.lifecycle import ModelRegistry, PromotionRefused

    registry = ModelRegistry(settings)
    champion = registry.by_alias("champion") if registry.exists() else None
    challenger = registry.by_alias("challenger") if registry.exists() else None
    if challenger is None:
        raise MonitoringError("the registry has no challenger to promote; see spxcast models list")
    versions = None if champion is None else (champion.version, challenger.version)
    engine = connect(settings.db_url(), settings.db.sqlite_busy_timeout_ms)
    decision, paired, health = promotion_check(
        settings, engine, now or datetime.now(UTC), force, reason, versions
    )
    result: dict[str, Any] = {
        "challenger": challenger.version,
        "champion": None if champion is None else champion.version,
        "decision": asdict(decision),
        "paired": asdict(paired),
        "health": health,
    }
    if not decision.promote:
        return clean(result)
    why = "; ".join(decision.reasons)
    try:
        promoted = registry.promote(challenger.version, force=force, reason=why, actor=actor)
    except PromotionRefused as exc:
        # Live evidence does not override the registry's offline gates; a person can (--force --reason).
        result["decision"]["promote"] = False
        result["decision"]["reasons"].append(f"registry gates refused: {exc}")
        return clean(result)
    result["promoted"] = f"v{promoted.version} replaces v{promoted.previous_champion}"
    result["serving"] = deploy_to_serving(settings, challenger.version, f"promoted: {why}", swap=True)
    return clean(result)


def auto_promote(settings: Settings, now: datetime) -> dict[str, Any] | None:
    """The ``automatic`` policy's promotion attempt of a monitoring run: :func:`promote_challenger` by
    ``monitoring`` when the registry has a challenger (None otherwise)."""
    from spxcast.registry.lifecycle import ModelRegistry

    registry = ModelRegistry(settings)
    if not registry.exists() or registry.by_alias("challenger") is None:
        return None
    return promote_challenger(settings, actor="monitoring", now=now)
