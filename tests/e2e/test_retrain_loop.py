"""The retrain loop end to end on a replay: decay -> training -> gates -> shadow -> promotion only with
significance, without a hand on the keyboard.

A market-only hourly FX series (files source) carries a planted, learnable dependence that changes
mid-replay: before the switch the hourly returns are unpredictable (phi = 0), after it they mean-revert
(r_t = -0.8 r_(t-1) + noise), so the champion trained before the switch decays and a model trained on the
new rows can beat it. (With the planted signal merely switched off, no retrained model can beat the zero
forecast on the new rows: the gates would rightly refuse every one, and the loop would stop at "no new
version"; the decay alert of that case is tested in tests/unit/monitoring/test_monitoring_service.py.)

The home holds the bars up to the replay start; the replay source holds the whole series in another lake,
so the live loop appends each bar to the home as it closes and a retrain at replay time T sees only the
bars up to T. Every 24 bars a monitoring run at the replay clock, policy ``automatic``, with a real SMTP
server and the serving API (uvicorn) on loopback: the decay alert and its email (report attached), the
training DAG through the pipeline runner, the registry's gates, the version in the idle slot in shadow via
the admin routes, and promotion only once the paired test on the live rows is significant.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from features_factory import candles_csv_frame
from monitoring_support import serving_api, smtp_server
from spxcast.config import Settings, load_settings
from spxcast.db import PipelineRun, connect
from spxcast.ingest.market import ingest_market
from spxcast.lake import Lake
from spxcast.monitoring import service as monitoring
from spxcast.registry import ModelRegistry

KEY = "retrain-e2e-admin-key-3c9d"
PASSWORD = "retrain-e2e-smtp-51aa"
PHI_AFTER = -0.8
HOME_BARS = 240  # two weeks of hourly bars before the replay
BEFORE_SWITCH = 48  # replayed bars before the planted dependence appears
EVERY = 48  # bars between monitoring runs (two trading days)


def fx_hours(start: datetime, count: int) -> list[datetime]:
    """``count`` hourly bars from ``start`` on the FX 24x5 calendar (Sunday 17:00 to Friday 17:00, New
    York time)."""
    new_york = ZoneInfo("America/New_York")
    hours, t = [], start
    while len(hours) < count:
        local = t.astimezone(new_york)
        weekend = local.weekday() == 5 or (local.weekday() == 4 and local.hour >= 17)
        weekend |= local.weekday() == 6 and local.hour < 17
        if not weekend:
            hours.append(t)
        t += timedelta(hours=1)
    return hours


def write_candles(path: Path, stamps: list[datetime], switch: int, seed: int = 7) -> None:
    """Hourly OHLCV bars whose return is noise before bar ``switch`` and ``PHI_AFTER`` x the previous
    bar's return plus noise from it on."""
    rng = np.random.default_rng(seed)
    vol = 0.0012
    shocks = rng.standard_normal(len(stamps)) * vol
    returns = shocks.copy()
    for i in range(switch, len(stamps)):
        returns[i] = PHI_AFTER * returns[i - 1] + shocks[i]
    candles_csv_frame(stamps, returns, 1.1, vol, rng).write_csv(path)


def home_settings(home: Path, **extra: Any) -> Settings:
    return load_settings(
        home=home,
        instrument="EUR_USD",
        granularity="H1",
        horizon_bars=1,
        **{
            "news.source": "none",
            "pipeline.workers": 2,
            "training.trials_coarse": 2,
            "training.trials_fine": 1,
            "training.max_rounds": 80,
            "serving.feature_refresh_s": 3600.0,
            "live.feature_store": "none",
            **extra,
        },
    )


def champion(settings: Settings) -> int:
    """A LightGBM model trained on the home's gold (the bars before the replay), registered and made
    champion by hand (no model beats the zero forecast on unpredictable returns: it serves anyway)."""
    import json
    import uuid

    from spxcast.features.catalog import feature_catalog
    from spxcast.lake.tables import GOLD_FEATURES
    from spxcast.models.train import TrainingSpec, train_candidate
    from spxcast.pipeline.tasks.features import build_features
    from spxcast.pipeline.tasks.training import feature_set, used_features, write_candidate
    from spxcast.registry import register_run

    build_features(settings, "e2e-features")
    lake = Lake.from_settings(settings)
    gold = lake.series(GOLD_FEATURES.name, settings.instrument, settings.granularity).collect()
    names, news, _ = feature_set(settings, gold.columns)
    names, news, families = used_features(settings, gold, names, news)
    spec = TrainingSpec.from_settings(settings, "lightgbm", names, news)
    run = train_candidate(gold, spec)
    run_id = f"champion-{uuid.uuid4().hex[:6]}"
    run_dir = settings.artifacts_dir() / "runs" / run_id
    versions = {GOLD_FEATURES.name: lake.version(GOLD_FEATURES.name)}
    lineage = {
        "run_id": run_id,
        "instrument": settings.instrument,
        "granularity": settings.granularity,
        "lake_versions": versions,
        "seed": settings.seed,
    }
    catalog = feature_catalog(settings)
    write_candidate(run_dir / "candidates" / "lightgbm", run, spec, lineage, catalog, families)
    selection = {
        "selected": "lightgbm",
        "candidates": {"lightgbm": {}},
        "reasons": {},
        "split_boundaries": run.boundaries.to_dict(),
        "lake_versions": versions,
    }
    (run_dir / "selection.json").write_text(json.dumps(selection, default=str))
    version = register_run(settings, run_dir, run_id, actor="tests").version
    assert version is not None
    ModelRegistry(settings).promote(version, force=True, reason="e2e: the model in production", actor="tests")
    return version


@pytest.mark.slow
@pytest.mark.timeout(600)  # 180-280 s on a loaded 2-core machine: two training-DAG runs, ten monitoring runs
def test_decay_training_gates_shadow_and_promotion_only_with_significance(tmp_path: Path) -> None:
    from spxcast.serving import create_app
    from spxcast.serving.live.hub import StreamHub
    from spxcast.serving.live.loop import LiveLoop
    from spxcast.serving.live.runtime import build_live_service
    from spxcast.serving.live.sources import ReplaySource

    started = time.perf_counter()
    stamps = fx_hours(datetime(2024, 1, 7, 22, tzinfo=UTC), HOME_BARS + 720)
    switch = HOME_BARS + BEFORE_SWITCH
    write_candles(tmp_path / "all.csv", stamps, switch)
    source = home_settings(tmp_path / "source")
    ingest_market(source, Lake.from_settings(source), source="files", file=tmp_path / "all.csv")
    pl.read_csv(tmp_path / "all.csv").head(HOME_BARS).write_csv(tmp_path / "home.csv")
    base = home_settings(tmp_path / "home", **{"serving.admin_key": KEY})
    ingest_market(base, Lake.from_settings(base), source="files", file=tmp_path / "home.csv")
    first = champion(base)
    seconds = {"home": time.perf_counter() - started}

    runs: list[dict[str, Any]] = []
    service = build_live_service(base)
    with smtp_server(PASSWORD) as (inbox, smtp_port), serving_api(create_app(base, service)) as url:
        config = base.monitoring.model_copy(
            update={
                "retrain_policy": "automatic",
                "serving_url": url,
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "smtp_user": "alerts",
                "smtp_password": SecretStr(PASSWORD),
                "email_to": ["oncall@example.org"],
                "performance_window_bars": 96,  # four trading days of hourly outcomes
                "min_realised_rows": 40,
                "promote_min_rows": 60,  # more than one 48-bar step of shadow rows
                "retrain_retry_minutes": 9 * 1440.0,
                "rules": [r for r in base.monitoring.rules if r.check != "article_age"],  # no news here
                "drift": base.monitoring.drift.model_copy(
                    update={"window_bars": 48, "bootstrap_samples": 60, "report_features": 5}
                ),
            }
        )
        settings = base.model_copy(update={"monitoring": config})
        replay = ReplaySource(
            Lake.from_settings(source),
            settings.instrument,
            settings.granularity,
            stamps[HOME_BARS],
            stamps[-1] + timedelta(hours=1),
            batch=EVERY,
        )
        loop = LiveLoop(settings, service, replay, StreamHub()).start()
        while not replay.finished and not (runs and (runs[-1]["promotion"] or {}).get("promoted")):
            loop.step()  # EVERY bars: appended to the home, predicted by every slot, outcomes attached
            loop.flush()  # their commit done before monitoring reads the log
            runs.append(
                monitoring.run_monitoring(
                    settings,
                    now=replay.now(),
                    trainer=monitoring.retrain_now,
                    promoter=monitoring.auto_promote,
                )
            )
    seconds["total"] = time.perf_counter() - started
    print(f"retrain loop e2e: {len(runs)} monitoring runs; seconds {seconds}")
    trace = "\n".join(_line(r) for r in runs)
    print(trace)

    # Decay: none before the switch; opened with significance within a bounded number of bars after it.
    known = stamps[switch] + timedelta(hours=1)  # the first outcome of the new regime is known at this close
    before = [r for r in runs if datetime.fromisoformat(r["at"]) < known]
    assert before and all(r["decay"]["rows"] >= config.min_realised_rows for r in before), trace
    assert not any(r["decay"]["decayed"] or "decay:model" in r["alerts_opened"] for r in before), trace
    opened = next((r for r in runs if "decay:model" in r["alerts_opened"]), None)
    assert opened is not None, trace
    delay = stamps.index(datetime.fromisoformat(opened["at"]) - timedelta(hours=1)) + 1 - switch
    assert delay <= 8 * EVERY, f"decay alert {delay} bars after the switch"
    assert opened["decay"]["p_value"] < config.decay_pvalue and opened["decay"]["ratio"] > 1.2

    # The email, with the run's report attached.
    mail = next(m for m in inbox.messages if opened["run_id"] in m["Subject"])
    plain = next(part for part in mail.walk() if part.get_content_type() == "text/plain")
    assert "decay:model" in plain.get_payload(decode=True).decode()
    assert any(part.get_filename() == "report.html" for part in mail.walk())

    # Training through the runner, as recorded runs; the first retrain may find nothing learnable yet.
    retrains = [r["retrain"]["result"] for r in runs if r["retrain"]["action"] == "train"]
    assert retrains[0] is opened["retrain"]["result"] or retrains[0] == opened["retrain"]["result"]
    assert all(r["status"] == "succeeded" for r in retrains), trace
    with Session(connect(settings.db_url())) as session:
        recorded = {r.id: r.dag for r in session.scalars(select(PipelineRun)).all()}
    assert all(recorded[r["training_run"]] == "training" for r in retrains)

    # Gates, then the idle slot in shadow through the admin API.
    shadowed = next((r for r in retrains if (r.get("shadow") or {}).get("status") == "deployed"), None)
    assert shadowed is not None, trace
    version = shadowed["challenger"]
    assert version != first and shadowed["gates"]["passed"], shadowed
    slots = shadowed["shadow"]
    assert slots["shadow"] is True and slots["versions"][slots["live"]] == first
    assert version in slots["versions"].values()

    # Promotion only once the live evidence is significant; refused before.
    decisions = [r["promotion"] for r in runs if r["promotion"] and r["promotion"]["challenger"] == version]
    refused, promoted = decisions[:-1], decisions[-1]
    assert refused and all(not d["decision"]["promote"] for d in refused), trace
    assert all(
        d["paired"]["rows"] < config.promote_min_rows or d["paired"]["p_value"] >= config.promote_pvalue
        for d in refused
    )
    assert promoted.get("promoted") and promoted["paired"]["p_value"] < config.promote_pvalue, trace
    assert promoted["paired"]["rows"] >= config.promote_min_rows
    assert promoted["paired"]["challenger_rmse"] < promoted["paired"]["champion_rmse"]
    live = promoted["serving"]
    assert live["status"] == "deployed" and live["versions"][live["live"]] == version
    registry = ModelRegistry(settings)
    assert registry.by_alias("champion").version == version
    actions = [t.action for t in registry.history(version)]
    assert actions[0] == "register" and "retrain_gates" in actions and "shadow_deploy" in actions
    assert actions[-1] == "promote"


def _line(run: dict[str, Any]) -> str:
    """One monitoring run in a line (the trace a failed assertion shows)."""
    decay = run["decay"] or {}
    retrained = run["retrain"]["result"] or {}
    promotion = run["promotion"] or {}
    return (
        f"{run['at']} decay {decay.get('ratio')} p={decay.get('p_value')} rows={decay.get('rows')} "
        f"opened={[k for k in run['alerts_opened'] if not k.startswith(('drift:', 'missing:'))]} "
        f"retrain={run['retrain']['action']} {retrained.get('status')} v{retrained.get('challenger')} "
        f"{(retrained.get('shadow') or {}).get('status')} "
        f"promotion={(promotion.get('decision') or {}).get('reasons')} {promotion.get('promoted')}"
    )
