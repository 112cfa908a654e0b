"""The prediction service: slots, routing, prediction, explanation, the log and the admin operations.

No FastAPI here: routers call these methods and ``spxcast.serving.app`` maps the domain errors to HTTP.
The request path (:meth:`ServingService.predict`) reads one immutable snapshot of the slots, looks up a
NumPy vector, predicts one row, and puts the log entry on a queue: no DataFrame, no I/O.
"""

from __future__ import annotations

import gc
import logging
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from spxcast.config import Settings
from spxcast.db import PredictionRecord
from spxcast.errors import SpxcastError
from spxcast.serving import slots as slot_audit
from spxcast.serving.errors import DeployRefused, InvalidInput, NoModel, NotFound
from spxcast.serving.explain import Explanation, explain
from spxcast.serving.features import FeatureSource
from spxcast.serving.loading import LoadedModel, VersionLoader
from spxcast.serving.predlog import LogEntry, PredictionLog
from spxcast.serving.slots import SLOTS, SlotState, other, route
from spxcast.serving.telemetry import Telemetry
from spxcast.timeutil import bar_length

log = logging.getLogger(__name__)

RECENT_PREDICTIONS = 10_000
"""Predictions kept in memory for ``/explain`` before they need the database."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One answered prediction. Returns and bounds in percent; prices in the instrument's quote units.

    ``bar_ts`` is the start of the bar the forecast is made at the close of (None for explicit features);
    ``feature_as_of`` is that close; the forecast is for the return from there to ``horizon_minutes`` later.
    """

    prediction_id: str
    instrument: str
    predicted_pct: float
    price: float | None
    lower_pct: float | None
    upper_pct: float | None
    level: float | None
    model: LoadedModel
    slot: str
    bar_ts: datetime | None
    feature_as_of: datetime | None
    horizon_minutes: int
    explanation: Explanation | None = None

    @property
    def direction(self) -> str:
        return "up" if self.predicted_pct > 0 else "down" if self.predicted_pct < 0 else "flat"

    def price_at(self, pct: float | None) -> float | None:
        return None if self.price is None or pct is None else self.price * (1 + pct / 100)


@dataclass(frozen=True)
class _Slots:
    """One consistent snapshot: the state, the model in each slot, and the audit row it came from."""

    state: SlotState
    models: dict[str, LoadedModel | None]
    change_id: int = 0
    reason: str = "nothing deployed yet"


@dataclass(slots=True)  # one object per remembered prediction for the garbage collector, not two
class _Recent:
    model: LoadedModel
    vector: np.ndarray
    prediction: float
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class ServingService:
    """Everything the routes need, for the instrument, bar size and horizon of ``settings``."""

    def __init__(
        self,
        settings: Settings,
        source: FeatureSource,
        loader: VersionLoader,
        engine: Engine,
        telemetry: Telemetry,
    ) -> None:
        self.settings = settings
        self.source = source
        self.loader = loader
        self.engine = engine
        self.telemetry = telemetry
        spool = Path(settings.serving.spool_path or settings.home / "serving" / "predictions.spool.ndjson")
        self.log = PredictionLog(
            engine,
            spool,
            settings.serving.log_batch_rows,
            settings.serving.log_flush_s,
            on_written=telemetry.rows_written,
            on_cycle=telemetry.log_cycle,
        )
        self._slots = _Slots(SlotState(), dict.fromkeys(SLOTS))
        self._cache: dict[int, LoadedModel] = {}
        self._recent: OrderedDict[str, _Recent] = OrderedDict()
        self._admin = threading.Lock()
        self._fed: dict[int, datetime] = {}
        self._fed_lock = threading.Lock()
        self.attach_in_background = True
        """Whether :meth:`sync` attaches realised returns; False when a live loop of this series owns them
        (in this process or another), so that each outcome is attached and fed to ACI by one owner."""
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.bar = bar_length(settings.granularity)
        self.freeze_heap = False
        """Set in a dedicated server process: what is alive after start and after each slot change (the
        gold matrix, models, imported libraries: ~0.5 M objects) is frozen out of the garbage collector's
        full passes, which would otherwise stop every request for hundreds of milliseconds now and then."""

    # ----- lifecycle
    def start(self, background: bool = True) -> ServingService:
        """Load features, resume the newest audited slot state (else the registry champion), start the log."""
        self.source.refresh()
        self.log.start()
        try:
            self._resume()
        except (SpxcastError, SQLAlchemyError) as exc:
            log.error("no model loaded at start: %s", exc)
            self._slots = _Slots(self._slots.state, self._slots.models, 0, f"no model loaded at start: {exc}")
        self.telemetry.slots_changed(self._slots.state, self._slots.models)
        if self.freeze_heap:
            # Once, at start: what resuming the slots froze is thawed and collected first, so no garbage
            # is frozen with the long-lived heap.
            gc.unfreeze()
            gc.collect()
            gc.freeze()
        if background:
            self._worker = threading.Thread(target=self._background, name="serving-sync", daemon=True)
            self._worker.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(10)
        self.log.close()

    def _resume(self) -> None:
        changes = slot_audit.history(self.engine, 1)
        if changes:
            self._apply(changes[0].state, changes[0].id)
            return
        champion = self.loader.champion()
        if champion is None:
            self._slots = _Slots(
                SlotState(),
                dict.fromkeys(SLOTS),
                0,
                f"the registry has no champion for {self.loader.registry.name}; promote a version "
                "(spxcast models promote) or deploy one (spxcast serve deploy VERSION)",
            )
            return
        self._apply(SlotState().deployed(champion, swap=True), 0)

    def _model(self, version: int) -> LoadedModel:
        if version not in self._cache:
            self._cache[version] = self.loader.load(version)
        return self._cache[version]

    def _apply(self, state: SlotState, change_id: int) -> None:
        models = {s: None if v is None else self._model(v) for s, v in state.versions.items()}
        self._install(state, models, change_id)

    def _install(self, state: SlotState, models: dict[str, LoadedModel | None], change_id: int) -> None:
        """Make ``state`` with ``models`` the served slots (audited change ``change_id``)."""
        # The online row gets the new models' features before they can answer (off the request path).
        self.source.require(n for m in models.values() if m is not None for n in m.features)
        self._slots = _Slots(state, models, change_id)  # the swap: one reference, atomic
        self._cache = {m.version: m for m in models.values() if m is not None}
        self.telemetry.slots_changed(state, models)
        self.freeze_long_lived()  # the loaded models and what loading imported

    def freeze_long_lived(self) -> None:
        """What was just loaded is long-lived: out of the garbage collector's full passes (with
        :attr:`freeze_heap`, in a server process; each full pass otherwise walks all of it)."""
        if self.freeze_heap:
            gc.freeze()

    # ----- the request path
    def predict(
        self,
        instrument: str,
        ts: datetime | None = None,
        features: dict[str, float | None] | None = None,
        client_key: str | None = None,
        with_explanation: bool = False,
    ) -> Prediction:
        """Forecast for the newest closed bar, bar ``ts``, or an explicit feature vector."""
        if instrument != self.settings.instrument:
            raise NotFound(
                f"unknown instrument {instrument!r}; this server serves {self.settings.instrument!r}"
            )
        if ts is not None and features is not None:
            raise InvalidInput(
                "give either ts (a bar to predict at) or features (an explicit vector), not both"
            )
        snapshot = self._slots
        prediction_id = new_prediction_id()
        slot = route(snapshot.state, client_key or prediction_id)
        model = snapshot.models[slot]
        if model is None:
            raise NoModel(f"no model can answer: {snapshot.reason}")
        row = None
        if features is None:
            row = self.source.row(instrument, ts)
            x = self._vector(model, row.vector)
        else:
            x = explicit_vector(model, features)
        predicted = model.predict(x)
        lower = upper = level = None
        if model.conformal is not None:
            lower, upper = model.conformal.interval(predicted)
            level = model.conformal.level
        result = Prediction(
            prediction_id,
            instrument,
            predicted,
            None if row is None else row.price,
            lower,
            upper,
            level,
            model,
            slot,
            None if row is None else row.bar_ts,
            None if row is None else row.as_of,
            self.settings.horizon_minutes,
            explain(model.model, x) if with_explanation else None,
        )
        self._log(result, x, "served")
        if snapshot.state.shadow:
            self._shadow(snapshot, result, row, features)
        self._remember(prediction_id, model, x, predicted)
        return result

    def _vector(self, model: LoadedModel, lookup: Any) -> np.ndarray:
        try:
            return np.asarray(lookup(model.features), dtype=np.float32)
        except KeyError as exc:
            raise NoModel(
                f"{model.model_name} v{model.version} reads feature {exc} that gold.features does not have; "
                "rebuild features with the model's catalog"
            ) from None

    def _shadow(self, snapshot: _Slots, served: Prediction, row: Any, features: Any) -> None:
        slot = other(served.slot)
        model = snapshot.models[slot]
        if model is None:
            return
        try:
            x = self._vector(model, row.vector) if row is not None else explicit_vector(model, features)
            predicted = model.predict(x)
        except SpxcastError as exc:  # the shadow never changes what the client gets
            log.warning("shadow %s v%d could not score: %s", slot, model.version, exc)
            return
        lower, upper = (None, None) if model.conformal is None else model.conformal.interval(predicted)
        shadow = Prediction(
            new_prediction_id(),
            served.instrument,
            predicted,
            served.price,
            lower,
            upper,
            None,
            model,
            slot,
            served.bar_ts,
            served.feature_as_of,
            served.horizon_minutes,
        )
        self._log(shadow, x, "shadow")

    def _log(self, p: Prediction, x: np.ndarray, role: str) -> None:
        self.log.submit(
            LogEntry(
                prediction_id=p.prediction_id,
                created_at=datetime.now(UTC),
                instrument=p.instrument,
                granularity=self.settings.granularity,
                horizon_minutes=p.horizon_minutes,
                bar_ts=p.bar_ts,
                feature_as_of=p.feature_as_of,
                model_name=p.model.model_name,
                model_version=p.model.version,
                slot=p.slot,
                role=role,
                predicted_pct=p.predicted_pct,
                lower_pct=p.lower_pct,
                upper_pct=p.upper_pct,
                price=p.price,
                names=p.model.features,
                values=x,
            )
        )
        self.telemetry.predicted(p.slot, role)

    def _remember(self, prediction_id: str, model: LoadedModel, x: np.ndarray, predicted: float) -> None:
        self._recent[prediction_id] = _Recent(model, x, predicted)
        while len(self._recent) > RECENT_PREDICTIONS:
            self._recent.popitem(last=False)

    # ----- explanations, history, news, models
    def explain(self, prediction_id: str) -> tuple[LoadedModel, float, Explanation]:
        """Contributions of a logged prediction (kept in memory, else read back from the log)."""
        recent = self._recent.get(prediction_id)
        if recent is not None:
            return recent.model, recent.prediction, explain(recent.model.model, recent.vector)
        with Session(self.engine) as session:
            record = session.get(PredictionRecord, prediction_id)
        if record is None:
            raise NotFound(f"no prediction {prediction_id!r} in the log")
        model = self._cache.get(record.model_version)
        if model is None:
            raise NotFound(
                f"prediction {prediction_id} was made by v{record.model_version}, which no slot holds now"
            )
        import json

        values = json.loads(record.features)
        x = np.array([np.nan if values.get(n) is None else values[n] for n in model.features], np.float32)
        return model, record.predicted_pct, explain(model.model, x)

    def history(
        self,
        instrument: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        shadow: bool = False,
        newest: bool = False,
    ) -> list[PredictionRecord]:
        """Logged predictions of ``instrument`` whose bar starts in ``[start, end)``, oldest first: the
        oldest ``limit`` of them, or with ``newest`` the newest ``limit``."""
        if instrument != self.settings.instrument:
            raise NotFound(
                f"unknown instrument {instrument!r}; this server serves {self.settings.instrument!r}"
            )
        query = select(PredictionRecord).where(
            PredictionRecord.instrument == instrument,
            PredictionRecord.role == ("shadow" if shadow else "served"),
        )
        if start is not None:
            query = query.where(PredictionRecord.bar_ts >= start)
        if end is not None:
            query = query.where(PredictionRecord.bar_ts < end)
        order = (PredictionRecord.bar_ts, PredictionRecord.created_at)
        query = query.order_by(*(c.desc() for c in order) if newest else order).limit(limit)
        with Session(self.engine) as session:
            rows = list(session.scalars(query).all())
        return rows[::-1] if newest else rows

    def news(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` scored articles: received time, title, score (p_pos - p_neg), scorer."""
        lake = self.source.lake
        if not lake.exists("bronze.news") or not lake.exists("silver.news_scores"):
            return []
        return (
            lake.scan("bronze.news")
            .select("article_id", "received_at", "title", "url", "text_hash")
            .join(lake.scan("silver.news_scores").select("text_hash", "score", "scorer_id"), on="text_hash")
            .sort("received_at", descending=True)
            .head(limit)
            .collect()
            .rename({"scorer_id": "scorer"})
            .drop("text_hash")
            .to_dicts()
        )

    def bars(self, instrument: str, limit: int, end: datetime | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` stored bars of ``instrument`` (bronze.candles) starting before ``end`` (all
        when None), oldest first."""
        if instrument != self.settings.instrument:
            raise NotFound(
                f"unknown instrument {instrument!r}; this server serves {self.settings.instrument!r}"
            )
        lake = self.source.lake
        if not lake.exists("bronze.candles"):
            return []
        return (
            lake.scan("bronze.candles")
            .filter(pl.col("instrument") == instrument, pl.col("granularity") == self.settings.granularity)
            .filter(pl.lit(True) if end is None else pl.col("ts") < end)
            .select("ts", "open", "high", "low", "close", "volume")
            .sort("ts")
            .tail(limit)
            .collect()
            .to_dicts()
        )

    def slots(self) -> _Slots:
        return self._slots

    def aliases(self) -> dict[str, int | None]:
        """Champion and challenger versions in the registry (raises when the registry is unreachable)."""
        from spxcast.registry import CHALLENGER, CHAMPION

        result: dict[str, int | None] = {}
        for alias in (CHAMPION, CHALLENGER):
            info = self.loader.registry.by_alias(alias)
            result[alias] = None if info is None else int(info.version)
        return result

    def problems(self) -> list[str]:
        """Why the service is not ready (empty when it is)."""
        found = []
        snapshot = self._slots
        if snapshot.models[snapshot.state.live] is None:
            found.append(f"no model loaded: {snapshot.reason}")
        if self.source.size == 0:
            found.append(
                f"feature source has no rows of {self.settings.instrument} {self.settings.granularity}"
            )
        if not self.log.writable():
            found.append(
                f"prediction log cannot take rows (writer stopped or {self.log.spool.parent} read-only)"
            )
        return found

    # ----- admin
    def deploy(self, version: int, actor: str, reason: str, swap: bool = True) -> SlotState:
        """Load ``version`` into the idle slot (checks: fingerprint, replay); swap to it when ``swap``."""
        with self._admin:
            current = self._slots
            model = self.loader.load(version)
            state = current.state.deployed(version, swap)
            models = {**current.models, current.state.idle: model}
            return self._commit(state, models, actor, "deploy" if not swap else "deploy+swap", reason)

    def rollback(self, actor: str, reason: str) -> SlotState:
        with self._admin:
            current = self._slots
            return self._commit(current.state.rolled_back(), dict(current.models), actor, "rollback", reason)

    def set_weights(self, weights: dict[str, float], actor: str, reason: str) -> SlotState:
        with self._admin:
            current = self._slots
            return self._commit(
                current.state.reweighted(weights), dict(current.models), actor, "weights", reason
            )

    def set_shadow(self, enabled: bool, actor: str, reason: str) -> SlotState:
        with self._admin:
            current = self._slots
            action = "shadow-on" if enabled else "shadow-off"
            return self._commit(
                current.state.with_shadow(enabled), dict(current.models), actor, action, reason
            )

    def _commit(
        self, state: SlotState, models: dict[str, LoadedModel | None], actor: str, action: str, reason: str
    ) -> SlotState:
        try:
            change = slot_audit.record(self.engine, actor, action, reason, state)
        except SQLAlchemyError as exc:
            raise DeployRefused(
                f"the slot change cannot be audited (app database: {exc}); nothing changed"
            ) from exc
        self._install(state, models, change)
        log.info(
            "slots: %s by %s (%s): live %s, versions %s", action, actor, reason, state.live, state.versions
        )
        return state

    # ----- background: other replicas' changes, new gold rows, realised returns
    def sync(self) -> None:
        """Apply a newer audited slot change (made by another replica or worker), reload changed gold rows,
        and attach realised returns."""
        newest = slot_audit.latest_id(self.engine)
        if newest > self._slots.change_id:
            with self._admin:
                [change] = slot_audit.history(self.engine, 1)
                if change.id > self._slots.change_id:
                    self._apply(change.state, change.id)
        self.source.refresh()
        if self.attach_in_background:
            self.attach_realised()

    def _background(self) -> None:
        while not self._stop.wait(self.settings.serving.feature_refresh_s):
            try:
                self.sync()
            except (SpxcastError, SQLAlchemyError) as exc:
                log.warning("background sync failed: %s", exc)

    def attach_realised(self, now: datetime | None = None, limit: int = 5000) -> int:
        """Attach the realised return to logged predictions whose horizon has passed; returns how many.

        The realised return of a forecast at bar ``ts`` is that bar's label in gold (the return from its
        close to the close ``horizon`` later), known once the horizon has passed and gold holds it. Each
        realised outcome also adapts the interval (ACI) of the version that made the prediction.
        """
        now = now or datetime.now(UTC)
        cutoff = now - self.bar - timedelta(minutes=self.settings.horizon_minutes)
        pending = (
            PredictionRecord.instrument == self.settings.instrument,
            PredictionRecord.realised_pct.is_(None),
            PredictionRecord.bar_ts.is_not(None),
        )
        bars = (
            select(PredictionRecord.bar_ts)
            .where(*pending, PredictionRecord.bar_ts <= cutoff)
            .group_by(PredictionRecord.bar_ts)
            .order_by(PredictionRecord.bar_ts)
            .limit(limit)
        )
        attached = 0
        outcomes: list[tuple[int, datetime, float, float]] = []
        with Session(self.engine) as session, session.begin():
            for stored in session.scalars(bars).all():
                if stored is None:
                    continue
                bar_ts = stored if stored.tzinfo else stored.replace(tzinfo=UTC)
                realised = self.source.realised(self.settings.instrument, bar_ts)
                if realised is None:
                    continue
                at_bar = (*pending, PredictionRecord.bar_ts == stored)
                by_version = session.execute(
                    select(PredictionRecord.model_version, func.min(PredictionRecord.predicted_pct))
                    .where(*at_bar)
                    .group_by(PredictionRecord.model_version)
                ).all()
                result = session.execute(
                    update(PredictionRecord).where(*at_bar).values(realised_pct=realised, realised_at=now)
                )
                attached += int(result.rowcount or 0)  # type: ignore[attr-defined]
                outcomes.extend((v, bar_ts, p, realised) for v, p in by_version)  # one per version and bar
        self.observe_realised(outcomes)
        return attached

    def observe_realised(self, outcomes: Iterable[tuple[int, datetime, float, float]]) -> None:
        """Feed realised outcomes ``(model version, bar start, predicted %, realised %)`` to the adaptive
        conformal interval (ACI) of the versions the slots hold: once per version and bar, in bar order
        (an outcome at or before one already fed is ignored), a batch per version."""
        by_version: dict[int, list[tuple[datetime, float, float]]] = {}
        for version, bar_ts, predicted, realised in outcomes:
            by_version.setdefault(version, []).append((bar_ts, predicted, realised))
        with self._fed_lock:
            for version, items in by_version.items():
                model = self._cache.get(version)
                if model is None or model.conformal is None:
                    continue
                fed = self._fed.get(version)
                fresh = []
                for bar_ts, predicted, realised in sorted(items, key=lambda item: item[0]):
                    if fed is None or bar_ts > fed:
                        fresh.append((predicted, realised))
                        fed = bar_ts
                if fresh and fed is not None:
                    self._fed[version] = fed
                    model.conformal.observe_many([p for p, _ in fresh], [r for _, r in fresh])


def new_prediction_id() -> str:
    """A random (version 4) UUID string for a prediction.

    Drawn from the process's Mersenne Twister (seeded from the OS at start, reseeded in forked children),
    not from ``os.urandom``: that is a system call on every request, and it releases the GIL to the log
    writer thread, which the request must then wait to get back. Prediction ids are keys, not secrets.
    """
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def explicit_vector(model: LoadedModel, features: dict[str, float | None]) -> np.ndarray:
    """``features`` in the model's order; 422 naming missing and unknown names (null = missing value)."""
    missing = [n for n in model.features if n not in features]
    unknown = sorted(set(features) - set(model.features))
    if missing or unknown:
        raise InvalidInput(
            f"{model.model_name} v{model.version} reads {len(model.features)} features; "
            f"missing {missing[:10]}{' …' if len(missing) > 10 else ''}, "
            f"unknown {unknown[:10]}{' …' if len(unknown) > 10 else ''}"
        )
    return np.array([np.nan if features[n] is None else features[n] for n in model.features], np.float32)
