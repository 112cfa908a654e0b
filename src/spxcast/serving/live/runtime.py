"""Putting a live loop together from settings, and running it: in its own process (``spxcast live``) or
embedded in the API process (``spxcast serve --live``), publishing to the app's hub and/or Redis."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI

from spxcast.config import Settings
from spxcast.errors import ConfigError, SpxcastError
from spxcast.lake import Lake
from spxcast.serving.live.features import LiveFeatureSource
from spxcast.serving.live.hub import Fanout, Publisher, RedisPublisher, RedisRelay, StreamHub
from spxcast.serving.live.loop import ArticleFeed, BackgroundSink, LiveLoop, LoopStats
from spxcast.serving.live.news import PolledNews, StoredArticles
from spxcast.serving.live.sources import BarSource, DirectorySource, OandaPolling, ReplaySource
from spxcast.serving.service import ServingService
from spxcast.timeutil import parse_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replay:
    """A stored range to play: ``speed`` market seconds per wall second, ``None`` = as fast as possible."""

    start: datetime
    end: datetime
    speed: float | None


def parse_speed(text: str) -> float | None:
    """``60x`` / ``60`` -> 60.0 market seconds per second; ``max`` -> None."""
    value = text.strip().lower()
    if value == "max":
        return None
    try:
        speed = float(value.removesuffix("x"))
    except ValueError:
        speed = 0.0
    if speed <= 0:
        raise ConfigError(f"replay speed {text!r} must be like 60x (market time per wall time) or max")
    return speed


def build_live_service(settings: Settings) -> ServingService:
    """The serving service with the live feature source (the loop's newest vectors in front of gold)."""
    from spxcast.serving.app import build_service

    return build_service(settings, LiveFeatureSource(settings))


def bar_source(settings: Settings, lake: Lake, replay: Replay | None) -> BarSource:
    """The candle source ``settings.live.source`` names (``replay`` when a replay range is given)."""
    live = settings.live
    if replay is not None:
        return ReplaySource(
            lake, settings.instrument, settings.granularity, replay.start, replay.end, replay.speed
        )
    if live.source == "oanda":
        from spxcast.sources.market.oanda import OandaCandleSource

        return OandaPolling(
            OandaCandleSource(settings.oanda), settings.instrument, settings.granularity, live.poll_s
        )
    if live.source == "files":
        if not live.files_dir:
            raise ConfigError("live.source = files needs live.files_dir (SPXCAST_LIVE__FILES_DIR)")
        return DirectorySource(Path(live.files_dir), settings.market.files, live.poll_s)
    raise ConfigError("live.source = replay needs a range: spxcast live --replay FROM TO")


def article_feed(settings: Settings, lake: Lake, source: BarSource) -> ArticleFeed | None:
    """Stored articles for a replay, polled news for a live source; None for market-only runs."""
    if not settings.features.use_news or settings.news.source == "none":
        return None
    from spxcast.sentiment import scorer_id

    if isinstance(source, ReplaySource):
        days = timedelta(days=30)  # wider than any news feature's span
        return StoredArticles(lake, scorer_id(settings.sentiment), source.start - days, source.end)
    return PolledNews(settings, lake, source.now() - timedelta(days=30)).start()


def feature_sink(settings: Settings) -> BackgroundSink | None:
    """The Feast online store the loop pushes to (``live.feature_store``), or None; ready before it
    returns (Feast imported, definitions applied), so that no bar waits for that."""
    if settings.live.feature_store == "none":
        return None
    from spxcast.featurestore import FeatureStoreClient

    return BackgroundSink(FeatureStoreClient(settings).prepare(), settings.live.feature_push_interval_s)


def publisher(settings: Settings, hub: StreamHub) -> Publisher:
    """The hub of this process, Redis when ``live.redis_url`` is set, or both."""
    targets: list[Publisher] = [hub]
    if settings.live.redis_url:
        targets.append(RedisPublisher(settings.live.redis_url, settings.live.channel))
    return Fanout(*targets)


def build_loop(
    settings: Settings, service: ServingService, replay: Replay | None, hub: StreamHub
) -> LiveLoop:
    """The loop ``settings`` describe over ``service``: bars from ``replay`` (or the live source), their
    articles, frames to ``hub`` (and Redis when set) and vectors to the feature store when set."""
    lake = service.source.lake
    source = bar_source(settings, lake, replay)
    return LiveLoop(
        settings,
        service,
        source,
        publisher(settings, hub),
        articles=article_feed(settings, lake, source),
        sink=feature_sink(settings),
        publish_vectors=bool(settings.live.redis_url),
    )


class LoopThread:
    """A :class:`LiveLoop` running in a daemon thread until stopped (or its replay ends)."""

    def __init__(self, loop: LiveLoop, until_finished: bool = False) -> None:
        self.loop = loop
        self.until_finished = until_finished
        self.error: BaseException | None = None
        self.stats: LoopStats | None = None
        self._thread = threading.Thread(target=self._run, name="live-loop", daemon=True)

    def start(self) -> LoopThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.loop.start()
            self.stats = self.loop.run(self.until_finished)
        except (SpxcastError, OSError) as exc:
            self.error = exc
            log.error("live loop stopped: %s", exc)

    def stop(self, timeout: float = 30.0) -> None:
        self.loop.stop()
        self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def embed_loop(app: FastAPI, settings: Settings, service: ServingService, replay: Replay | None) -> None:
    """Run a live loop inside ``app``'s lifespan (after the service started, stopped before it closes)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            loop = build_loop(settings, service, replay, application.state.hub)
            runner = LoopThread(loop, until_finished=False).start()
            application.state.live = runner
            try:
                yield state
            finally:
                runner.stop()
                loop.close()

    app.router.lifespan_context = lifespan


def load_newest_vector(settings: Settings, source: LiveFeatureSource) -> None:
    """A replica starting: the newest vector in the feature store's online store into memory (Feast is
    imported here, in a thread, never on the request path). Vectors relayed meanwhile are newer and kept."""
    from spxcast.featurestore import FeatureStoreClient

    try:
        found = FeatureStoreClient(settings).online_vector(settings.instrument, settings.granularity)
    except Exception as exc:  # Feast raises many types; the replica serves gold and relayed vectors anyway
        log.warning("no vector from the online store at start (%s): %s", type(exc).__name__, exc)
        return
    if found is None:
        return
    bar_ts, values = found
    if source.newest_live() is None:
        names = list(values)
        vector = np.array([np.nan if values[n] is None else values[n] for n in names], np.float32)
        source.push(bar_ts, None, names, vector)


def observe_outcome(service: ServingService, frame: dict[str, Any]) -> None:
    """An ``outcome`` frame of the loop (another process) to this replica's adaptive conformal intervals:
    the loop attached it to the log; each replica's ACI gets it once, in bar order."""
    if frame.get("instrument") != service.settings.instrument or frame.get("granularity") != (
        service.settings.granularity
    ):
        return
    bar_ts = parse_utc(frame["ts"])
    service.observe_realised(
        (int(p["model_version"]), bar_ts, float(p["predicted_pct"]), float(frame["realised_pct"]))
        for p in frame["predictions"]
    )


def relay_from_redis(app: FastAPI, settings: Settings, service: ServingService) -> None:
    """A replica without a loop: relay the stream and vectors a loop in another process publishes. That
    loop owns the realised returns: this replica does not attach them, it feeds their frames to ACI."""
    if not settings.live.redis_url:
        return
    url = settings.live.redis_url
    service.attach_in_background = False
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            source = service.source
            on_vector = source.push_frame if isinstance(source, LiveFeatureSource) else None
            relay = RedisRelay(
                url,
                settings.live.channel,
                application.state.hub,
                on_vector,
                lambda frame: observe_outcome(service, frame),
            ).start()
            if isinstance(source, LiveFeatureSource) and settings.live.feature_store != "none":
                threading.Thread(target=load_newest_vector, args=(settings, source), daemon=True).start()
            try:
                yield state
            finally:
                relay.close()

    app.router.lifespan_context = lifespan


def live_app(settings: Settings, embedded: bool, replay: tuple[str, str] | None, speed: str) -> FastAPI:
    """The API with the live stream: the loop embedded (``embedded``), else relayed from Redis; a dedicated
    server process (``create_app(server=True)``: the interpreter tuned for latency)."""
    from spxcast.serving.app import create_app

    service = build_live_service(settings)
    app = create_app(settings, service, server=True)
    if embedded:
        chosen = (
            None if not replay else Replay(parse_utc(replay[0]), parse_utc(replay[1]), parse_speed(speed))
        )
        embed_loop(app, settings, service, chosen)
    else:
        relay_from_redis(app, settings, service)
    return app


def relay_app_from_environment() -> FastAPI:
    """uvicorn's factory for the workers of ``spxcast serve --workers N`` with ``live.redis_url``: settings
    from spxcast.toml and SPXCAST_* variables; each worker relays what ``spxcast live`` publishes."""
    from spxcast.config import load_settings

    return live_app(load_settings(), embedded=False, replay=None, speed="max")
