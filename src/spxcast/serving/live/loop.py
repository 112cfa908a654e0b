"""The live loop of one series: every new complete candle becomes a served, logged, streamed prediction.

One step (:meth:`LiveLoop.step`):

1. the source's new candles -> :func:`~spxcast.quality.validate_candles` (accepted or quarantined with the
   reasons, committed by :func:`~spxcast.ingest.market.store_bars` in step 4's order); only accepted bars
   after the position go on, oldest first;
2. for each bar, the online row (:func:`spxcast.features.online.online_values`) from the in-memory trailing
   window (sized by :func:`~spxcast.features.online.history_need`; the lake is read once at start, never
   per bar) and the scored articles received by the bar's close;
3. a prediction by every model slot of the serving service (the same slot snapshot and models ``/predict``
   uses) with a deterministic id per (model version, series, bar);
4. in ONE app-database transaction (:func:`.position.commit`): the predictions, the new position, the
   record of bars no model could predict (with the reason), and the realised returns now known -- labels of
   earlier bars whose horizon has passed (the same :func:`~spxcast.features.labels.make_labels` as gold),
   attached to every logged prediction of those bars still without one. A crash leaves all or nothing;
   a replayed bar is ignored by id, an attached return is never attached twice;
5. the vectors to the in-memory feature source (``/predict``), the feature store and the publisher
   (``bar`` frames), then ``outcome`` frames for the realised returns this transaction attached, and those
   outcomes to the slots' adaptive conformal intervals (ACI), once each, in bar order.

The loop owns the realised returns of its series: the serving service does not attach them in the
background while a loop runs (``attach_in_background``), so nothing is attached, published or fed to ACI
twice. At start, realised returns that became due while the loop was down are attached and published.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import polars as pl

from spxcast.config import Settings
from spxcast.errors import ConfigError, LakeError, SourceError
from spxcast.features.catalog import BAR_COLUMNS, feature_catalog, feature_context
from spxcast.features.labels import label_names, make_labels
from spxcast.features.online import ARTICLE_COLUMNS, ArticleArrays, BarArrays, history_need, online_values
from spxcast.ingest.market import store_bars
from spxcast.lake import Lake
from spxcast.lake.tables import CANDLES, UTC_TS
from spxcast.quality import ValidationResult, validate_candles
from spxcast.serving.live import position
from spxcast.serving.live.features import LiveFeatureSource
from spxcast.serving.live.hub import Publisher
from spxcast.serving.live.sources import BarSource
from spxcast.serving.loading import LoadedModel
from spxcast.serving.predlog import LogEntry
from spxcast.serving.service import ServingService
from spxcast.serving.slots import SLOTS

log = logging.getLogger(__name__)

ARTICLE_SCHEMA: dict[str, pl.DataType] = {
    "received_at": pl.Datetime("us", "UTC"),
    "score": pl.Float64(),
    "confidence": pl.Float64(),
}


class ArticleFeed(Protocol):
    """Scored articles as they become known (the loop asks before each batch)."""

    def new_articles(self) -> pl.DataFrame:
        """Articles (received_at, score, confidence) not handed out before; empty when none."""
        ...


class VectorSink(Protocol):
    """Where the bars' vectors go besides the in-memory source (the Feast online store)."""

    def push(self, instrument: str, granularity: str, vectors: pl.DataFrame) -> None:
        """``vectors``: ``ts`` + features, one row per bar, oldest first."""
        ...


class BackgroundSink:
    """A :class:`VectorSink` written by its own thread: the loop hands batches over and goes on.

    The online store is a cache of gold and of the loop's vectors (replicas read it only on start), so a
    batch lost in a crash is rebuilt by the next push or ``materialize``; nothing the log needs waits here.

    Pushes are at least ``min_interval_s`` apart, and start when a batch arrives (the loop hands it over
    right after publishing its bars, so a push does not compete with a bar for the interpreter): a batch
    arriving sooner waits for a later one, or is pushed after ``2 * min_interval_s`` without one. The
    store keeps the newest vector of a series, so a fast replay does not spend its time writing vectors
    the next bar overwrites; a live bar a minute is pushed as it comes. :meth:`close` pushes the rest.
    """

    def __init__(self, target: VectorSink, min_interval_s: float = 0.0) -> None:
        import queue

        self.target = target
        self.min_interval_s = min_interval_s
        self.errors = 0
        self._queue: queue.SimpleQueue[tuple[str, str, pl.DataFrame] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="feature-store-push", daemon=True)
        self._thread.start()

    def push(self, instrument: str, granularity: str, vectors: pl.DataFrame) -> None:
        self._queue.put((instrument, granularity, vectors))

    def close(self, timeout: float = 60.0) -> None:
        """Push what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        import queue

        pending: list[tuple[str, str, pl.DataFrame]] = []
        pushed_at = -math.inf
        while True:
            wait = None if not pending else max(0.0, pushed_at + 2 * self.min_interval_s - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:  # no batch for a while: push what waits
                pushed_at = self._push(pending)
                continue
            stopping = item is None
            if item is not None:
                pending.append(item)
            while not self._queue.empty():
                item = self._queue.get()
                stopping = stopping or item is None
                if item is not None:
                    pending.append(item)
            if stopping:
                self._push(pending)
                return
            if time.monotonic() - pushed_at >= self.min_interval_s:
                pushed_at = self._push(pending)

    def _push(self, pending: list[tuple[str, str, pl.DataFrame]]) -> float:
        """Push and empty ``pending``; returns when the push started (monotonic seconds)."""
        started = time.monotonic()
        if not pending:
            return started
        instrument, granularity, _ = pending[0]
        try:
            self.target.push(instrument, granularity, pl.concat([b[2] for b in pending]))
        except Exception as exc:  # Feast raises many types; the loop must not stop for a cache
            self.errors += 1
            log.warning("feature store push failed (%s): %s", type(exc).__name__, exc)
        pending.clear()
        return started


@dataclass
class LoopStats:
    """Counters of one loop since it started."""

    polls: int = 0
    bars: int = 0
    predictions: int = 0
    quarantined: int = 0
    outcomes: int = 0
    attached: int = 0
    unpredicted: int = 0
    source_errors: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Made:
    prediction_id: str
    slot: str
    role: str
    model: LoadedModel
    predicted_pct: float


class LiveLoop:
    """The loop of ``settings.instrument``/``settings.granularity`` around one :class:`ServingService`."""

    def __init__(
        self,
        settings: Settings,
        service: ServingService,
        source: BarSource,
        publisher: Publisher,
        *,
        lake: Lake | None = None,
        articles: ArticleFeed | None = None,
        sink: BackgroundSink | None = None,
        on_bar: Callable[[dict[str, Any]], None] | None = None,
        publish_vectors: bool = False,
    ) -> None:
        if not isinstance(service.source, LiveFeatureSource):
            raise ConfigError(
                "the live loop needs a service built with a LiveFeatureSource (build_live_service)"
            )
        self.settings = settings
        self.service = service
        service.attach_in_background = False  # this loop attaches the series' realised returns
        self.features: LiveFeatureSource = service.source
        self.source = source
        self.publisher = publisher
        self.lake = lake or service.source.lake
        self._stores_bars = not source.stored_in(self.lake)  # a replay of this lake: its bars are bronze's
        self.articles_feed = articles
        self.sink = sink
        self.on_bar = on_bar
        self.publish_vectors = publish_vectors
        self.instrument = settings.instrument
        self.granularity = settings.granularity
        self.bar = service.bar
        self.catalog = feature_catalog(settings)
        self.context = feature_context(settings)
        self.horizon = timedelta(minutes=settings.horizon_minutes)
        self._bar_us = int(self.bar / timedelta(microseconds=1))
        self.stats = LoopStats()
        self._stop = threading.Event()
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="live-commit")
        self._in_flight: Future[None] | None = None
        self._names: tuple[str, ...] = ()
        self._need = history_need(self.catalog, [])
        self._window = pl.DataFrame(schema={c: self.bar_schema[c] for c in BAR_COLUMNS})
        self._articles = pl.DataFrame(schema=ARTICLE_SCHEMA)
        self._article_arrays = ArticleArrays.of(self._articles)
        self._columns: dict[tuple[str, int], np.ndarray] = {}
        self._bronze_commits = 0  # stores into bronze since start (counted by the commit thread)
        self.position: datetime | None = None

    bar_schema = CANDLES.schema

    # ----- start: position and the trailing window, read once
    def start(self) -> LiveLoop:
        self.position = position.load(self.service.engine, self.instrument, self.granularity)
        origin = self.source.origin
        self._refresh_names()
        self._read_window()
        if self.position is None and origin is None and not self._window.is_empty():
            self.position = self._window["ts"][-1]  # a live source starts after the newest stored bar
        self._take_articles()
        due = position.Step(  # realised returns that became known before a stop and are not attached yet
            self.instrument,
            self.granularity,
            self.settings.horizon_minutes,
            labels=self._labels(self._window),
        )
        self._realised(position.commit(self.service.engine, due, datetime.now(UTC)))
        self.service.freeze_long_lived()  # the window, the feature store client and Feast it imported
        log.info(
            "live loop %s %s from %s (%d bars of history in memory)",
            self.instrument,
            self.granularity,
            self.position.isoformat() if self.position else "the first bar",
            self._window.height,
        )
        return self

    def _read_window(self) -> None:
        """The trailing window from bronze.candles: bars up to the position (or before a replay's start)."""
        if not self.lake.exists(CANDLES.name):
            return
        stored = self.lake.series(CANDLES.name, self.instrument, self.granularity).select(BAR_COLUMNS)
        if self.position is not None:
            stored = stored.filter(pl.col("ts") <= self.position)
        elif self.source.origin is not None:
            stored = stored.filter(pl.col("ts") < self.source.origin)
        self._window = stored.tail(self._keep_bars()).collect().cast(self._window.schema)

    def _refresh_names(self) -> None:
        """The features any slot's model reads, in catalog order (the vector the loop computes). A newly
        deployed model needing more history than the window holds gets it from the lake, once."""
        models = [m for m in self.service.slots().models.values() if m is not None]
        wanted = {n for m in models for n in m.features}
        names = tuple(spec.name for spec in self.catalog if spec.name in wanted)
        if names != self._names:
            before = self._keep_bars()
            self._names = names
            self._columns.clear()
            self._need = history_need(self.catalog, list(names))
            if self._keep_bars() > before and not self._window.is_empty():
                self.flush()  # the bars in flight are in bronze before it is read
                self._read_window()

    def _keep_bars(self) -> int:
        """Bars the window keeps: the most the features can need
        (:meth:`~spxcast.features.online.HistoryNeed.most_rows`), and enough to label a bar at the horizon."""
        return max(self._need.most_rows(self.bar), 2 * self.settings.horizon_bar_count + 2) + 1

    # ----- running
    def stop(self) -> None:
        self._stop.set()

    def run(self, until_finished: bool = True) -> LoopStats:
        """Poll and process until :meth:`stop` (or the source is finished, when ``until_finished``); the
        commit in flight is finished before it returns."""
        try:
            while not self._stop.is_set():
                try:
                    self.step()
                except (
                    SourceError
                ) as exc:  # the source is unreachable: try again next poll, keep the position
                    self.stats.source_errors += 1
                    log.warning(
                        "live %s source failed (retrying in %ss): %s",
                        self.source.name,
                        self.source.wait_s(),
                        exc,
                    )
                if until_finished and self.source.finished:
                    break
                self._stop.wait(self.source.wait_s())
        finally:
            self.flush()
        return self.stats

    def close(self) -> None:
        """Finish the commit in flight, then release what the loop was given and runs: its commit thread,
        the feature store pusher, and the article feed and publisher when they have a ``close`` (the news
        poller's thread, the Redis sender, which first sends what is queued)."""
        try:
            self.flush()
        finally:
            self._committer.shutdown(wait=True)
            if self.sink is not None:
                self.sink.close()
            for owned in (self.articles_feed, self.publisher):
                close = getattr(owned, "close", None)
                if close is not None:
                    close()

    def flush(self) -> None:
        """Wait for the commit in flight (bronze, log, position, realised returns and their outcome frames);
        raises its error, which stops the loop (a restart resumes after the committed position)."""
        pending, self._in_flight = self._in_flight, None
        if pending is not None:
            pending.result()

    def step(self) -> int:
        """One poll: process every new bar; returns how many bars were processed."""
        raw = self.source.poll(self.position)
        self.stats.polls += 1
        if raw.is_empty():
            return 0
        arrived = time.time()
        now = self.source.now()
        result = validate_candles(
            raw,
            instrument=self.instrument,
            granularity=self.granularity,
            source=self.source.name,
            now=now,
            quality=self.settings.quality,
        )
        self.stats.quarantined += result.quarantined.height
        new = result.accepted.select(BAR_COLUMNS).unique("ts", keep="last").sort("ts")
        if self.position is not None:
            new = new.filter(pl.col("ts") > self.position)
        if new.is_empty():
            self.flush()
            if self._stores_bars:
                store_bars(self.lake, result)  # quarantined rows, or bars stored before: idempotent
            return 0
        self._process(new, result, arrived)
        return new.height

    def _process(self, new: pl.DataFrame, validated: ValidationResult, arrived: float) -> None:
        """Predict ``new`` (accepted bars after the position, oldest first), commit, publish.

        Order (nothing lost): the stored position never moves past a bar before that bar is committed to
        bronze (:func:`~spxcast.ingest.market.store_bars`) and its predictions are logged, in that order.
        The frames of a poll go out as soon as its bars are predicted, *before* those commits, when the source
        delivers again whatever comes after the stored position (OANDA's history, a replay:
        ``source.redelivers``), and the commit runs in a background thread (one in flight, in order) while
        the next poll is computed: a crash before it finishes loses nothing -- the restart gets those bars
        again and logs the same predictions under the same ids (clients may see such a bar's frame twice,
        never a bar that is not stored afterwards). A source that may not deliver a bar again (a directory
        whose files can be removed) commits first and publishes after. ``outcome`` frames always follow
        the commit that attached them.
        """
        self._refresh_names()
        self._take_articles()
        snapshot = self.service.slots()
        new = new.cast(self._window.schema)
        full = pl.concat([self._window, new], how="vertical")
        window = BarArrays.of(full)  # checked and in NumPy once per poll; each bar reads a view
        first = self._window.height
        news = self._need.article_minutes > 0
        computed: list[np.ndarray] = []
        bars_of_poll = list(new.iter_rows(named=True))
        for index in range(first, full.height):
            bars = window.head(index + 1)
            articles = self._need.articles_for(self._article_arrays, int(bars.ts_us[-1]) + self._bar_us)
            computed.append(
                online_values(bars, articles if news else None, self.catalog, self.context, self._names)
            )
        matrix = np.vstack(computed)
        forecasts = self._predict(snapshot, matrix)
        rows: list[dict[str, Any]] = []
        frames: list[tuple[datetime, float, np.ndarray, dict[str, Any]]] = []
        created = datetime.now(UTC)
        for i, bar in enumerate(bars_of_poll):
            ts: datetime = bar["ts"]
            close_at = ts + self.bar
            price = float(bar["close"])
            made = self._log(snapshot, forecasts, i, ts, close_at, price, matrix[i], created, rows)
            published = (ts, price, matrix[i], self._bar_frame(bar, close_at, price, made, arrived, snapshot))
            if self.source.redelivers:
                self._publish_bar(*published)  # as soon as its poll is predicted (see above)
            else:
                frames.append(published)
        last = full["ts"][-1]
        step = position.Step(
            self.instrument, self.granularity, self.settings.horizon_minutes, last, new.height, rows
        )
        if not rows:
            step.unpredicted = position.Unpredicted(
                new["ts"][0] + self.bar, last + self.bar, new.height, self._why_unpredicted(snapshot)
            )
        if self.source.redelivers:
            self.flush()  # commits stay in order, one in flight while the next poll is computed
            self._in_flight = self._committer.submit(self._commit, validated, step, full)
        else:
            self.flush()
            self._commit(validated, step, full)
            for published in frames:
                self._publish_bar(*published)
        if self.sink is not None:
            self.sink.push(self.instrument, self.granularity, self._vectors(new["ts"], matrix))
        self.position = last
        self._window = full.tail(self._keep_bars())
        self.stats.bars += new.height
        self.stats.predictions += len(rows)
        if step.unpredicted is not None:
            self.stats.unpredicted += new.height
            log.warning("live %s", step.unpredicted.reason)

    def _commit(self, validated: ValidationResult, step: position.Step, bars: pl.DataFrame) -> None:
        """Bronze first (unless the bars are bronze's own: ``source.stored_in``), then the log, position and
        realised returns known from ``bars`` in one transaction; then the outcomes that transaction attached
        are published and fed to ACI."""
        step.labels = self._labels(bars)
        if self._stores_bars:
            store_bars(self.lake, validated)
            self._compact_now_and_then()
        self._realised(position.commit(self.service.engine, step, datetime.now(UTC)))

    def _compact_now_and_then(self) -> None:
        """Every ``live.compact_every`` stores, bronze.candles' small files (one per poll) into few: a
        failure is logged, the loop goes on (the next one retries)."""
        every = self.settings.live.compact_every
        self._bronze_commits += 1
        if not every or self._bronze_commits % every:
            return
        try:
            self.lake.compact(CANDLES.name)
        except LakeError as exc:
            log.warning("live: compacting %s failed (the loop goes on): %s", CANDLES.name, exc)

    def _publish_bar(self, ts: datetime, price: float, values: np.ndarray, frame: dict[str, Any]) -> None:
        """A bar's vector to the in-memory source (and to Redis for replicas), then its frame."""
        self.features.push(ts, price, self._names, values)
        if self.publish_vectors:
            self.publisher.publish(self._vector_frame(ts, price, values))
        self.publisher.publish(frame)
        if self.on_bar is not None:
            self.on_bar(frame)

    def _vectors(self, ts: pl.Series, matrix: np.ndarray) -> pl.DataFrame:
        """The feature store's rows of one poll: ``ts`` + the features (Float32, null for NaN)."""
        columns = [pl.Series(n, matrix[:, j], nan_to_null=True) for j, n in enumerate(self._names)]
        return pl.DataFrame([ts.cast(UTC_TS).alias("ts"), *columns])

    def _why_unpredicted(self, snapshot: Any) -> str:
        return f"no model loaded in any serving slot ({snapshot.reason})"

    def _predict(self, snapshot: Any, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """Each loaded slot's forecasts (percent) of the poll's bars (rows of ``matrix``, the loop's
        vectors): one call per model, the numbers it gives row by row."""
        return {
            slot: model.model.predict_matrix(np.ascontiguousarray(matrix[:, self._model_columns(model)]))
            for slot in SLOTS
            if (model := snapshot.models[slot]) is not None
        }

    def _log(
        self,
        snapshot: Any,
        forecasts: dict[str, np.ndarray],
        row: int,
        ts: datetime,
        close_at: datetime,
        price: float,
        values: np.ndarray,
        created: datetime,
        rows: list[dict[str, Any]],
    ) -> list[_Made]:
        """The log rows of bar ``row`` of the poll, one per loaded slot: the live slot's is ``served``,
        the other one's ``shadow``."""
        made = []
        for slot, predictions in forecasts.items():
            model = snapshot.models[slot]
            predicted = float(predictions[row])
            lower = upper = None
            if model.conformal is not None:
                lower, upper = model.conformal.interval(predicted)
            role = "served" if slot == snapshot.state.live else "shadow"
            pid = position.prediction_id(
                model.model_name, model.version, self.instrument, self.granularity, ts
            )
            entry = LogEntry(
                prediction_id=pid,
                created_at=created,
                instrument=self.instrument,
                granularity=self.granularity,
                horizon_minutes=self.settings.horizon_minutes,
                bar_ts=ts,
                feature_as_of=close_at,
                model_name=model.model_name,
                model_version=model.version,
                slot=slot,
                role=role,
                predicted_pct=predicted,
                lower_pct=lower,
                upper_pct=upper,
                price=price,
                names=model.features,
                values=values[self._model_columns(model)],
            )
            rows.append(entry.row())
            self.service.telemetry.predicted(slot, role)
            made.append(_Made(pid, slot, role, model, predicted))
        return made

    def _model_columns(self, model: LoadedModel) -> np.ndarray:
        """Where the model's features are in the loop's vector (cached per model while the names last)."""
        key = (model.model_name, model.version)
        found = self._columns.get(key)
        if found is None:
            index = {name: i for i, name in enumerate(self._names)}
            found = self._columns[key] = np.array([index[n] for n in model.features], dtype=np.intp)
        return found

    def _bar_frame(
        self,
        bar: dict[str, Any],
        close_at: datetime,
        price: float,
        made: Sequence[_Made],
        arrived: float,
        snapshot: Any,
    ) -> dict[str, Any]:
        predictions = []
        for m in made:
            lower = upper = level = None
            if m.model.conformal is not None:
                lower, upper = m.model.conformal.interval(m.predicted_pct)
                level = m.model.conformal.level
            predictions.append(
                {
                    "prediction_id": m.prediction_id,
                    "slot": m.slot,
                    "role": m.role,
                    "model_name": m.model.model_name,
                    "model_version": m.model.version,
                    "predicted_pct": m.predicted_pct,
                    "lower_pct": lower,
                    "upper_pct": upper,
                    "level": level,
                    "predicted_price": price * (1 + m.predicted_pct / 100),
                }
            )
        return {
            "type": "bar",
            "instrument": self.instrument,
            "granularity": self.granularity,
            "ts": bar["ts"].isoformat(),
            "close_at": close_at.isoformat(),
            "open": bar["open"],
            "high": bar["high"],
            "low": bar["low"],
            "close": price,
            "volume": bar["volume"],
            "horizon_minutes": self.settings.horizon_minutes,
            "predictions": predictions,
            "not_predicted": None if made else self._why_unpredicted(snapshot),
            "arrived_at": arrived,
        }

    def _vector_frame(self, ts: datetime, price: float, values: np.ndarray) -> dict[str, Any]:
        return {
            "type": "vector",
            "instrument": self.instrument,
            "granularity": self.granularity,
            "ts": ts.isoformat(),
            "price": price,
            "names": list(self._names),
            "values": [None if not np.isfinite(v) else float(v) for v in values],
        }

    # ----- news and realised returns
    def _take_articles(self) -> None:
        """New scored articles into the loop's own (those older than any bar still to come can need are
        dropped then)."""
        if self.articles_feed is None:
            return
        fresh = self.articles_feed.new_articles()
        if fresh.is_empty():
            return
        fresh = fresh.select(ARTICLE_COLUMNS).cast(ARTICLE_SCHEMA)  # type: ignore[arg-type]
        articles = pl.concat([self._articles, fresh]).unique().sort(ARTICLE_COLUMNS)
        if self.position is not None:
            since = self.position - timedelta(minutes=self._need.article_minutes) - self.bar
            articles = articles.filter(pl.col("received_at") > since)
        self._articles = articles
        self._article_arrays = ArticleArrays.of(articles)

    def _labels(self, bars: pl.DataFrame) -> dict[datetime, float]:
        """Realised returns (percent, by bar start) of the bars of ``bars`` whose horizon has passed by its
        newest bar: the gold labels, by the same function."""
        if bars.height < 2:
            return {}
        keyed = bars.with_columns(
            pl.lit(self.instrument).alias("instrument"), pl.lit(self.granularity).alias("granularity")
        )
        ret, _ = label_names(self.settings.horizon_minutes, self.settings.horizon_bars)
        labels = make_labels(
            keyed,
            self.settings.horizon_minutes,
            self.settings.features.label_tolerance_minutes,
            self.settings.horizon_bars,
            self.settings.calendar,
        )
        newest: datetime = bars["ts"][-1]
        known = labels.filter(pl.col(ret).is_not_null() & (pl.col("ts") <= newest - self.horizon))
        return {ts: float(value) for ts, value in known.select("ts", ret).iter_rows()}

    def _realised(self, attached: list[position.Realised]) -> None:
        """Publish the outcomes one transaction attached and feed them to ACI (the loop's own prediction
        of each version and bar; another logged one of that version when the loop made none)."""
        if not attached:
            return
        self.stats.attached += len(attached)
        by_bar: OrderedDict[datetime, list[position.Realised]] = OrderedDict()
        per_version: dict[tuple[int, datetime], position.Realised] = {}
        for r in attached:
            mine = r.prediction_id == position.prediction_id(
                r.model_name, r.model_version, self.instrument, self.granularity, r.bar_ts
            )
            if mine:
                by_bar.setdefault(r.bar_ts, []).append(r)
            if mine or (r.model_version, r.bar_ts) not in per_version:
                per_version[(r.model_version, r.bar_ts)] = r
        for ts, made in by_bar.items():
            self.stats.outcomes += 1
            self.publisher.publish(
                {
                    "type": "outcome",
                    "instrument": self.instrument,
                    "granularity": self.granularity,
                    "ts": ts.isoformat(),
                    "realised_pct": made[0].realised_pct,
                    "predictions": [
                        {
                            "prediction_id": m.prediction_id,
                            "model_version": m.model_version,
                            "predicted_pct": m.predicted_pct,
                        }
                        for m in made
                    ],
                }
            )
        self.service.observe_realised(
            (r.model_version, r.bar_ts, r.predicted_pct, r.realised_pct) for r in per_version.values()
        )
