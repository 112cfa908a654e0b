"""The dashboard against a real API on loopback running on demo data (tests/dashboard_factories.py).

Streamlit's AppTest renders each page in-process against the running API; the browser test serves the
dashboard with ``spxcast dashboard`` and drives Debian's chromium through Playwright (no browser download),
saving a screenshot of each page (``SPXCAST_TEST_ARTIFACTS`` or the test's temporary directory).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard_factories import FORECAST_BARS, KEY, RunningApi, free_port, running_api
from services import unavailable
from spxcast.dashboard.prep import parse_ts

APP = Path(__file__).resolve().parents[2] / "src" / "spxcast" / "dashboard" / "app.py"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_api(tmp_path_factory.mktemp("dashboard")) as running:
        yield running


def app_test(monkeypatch: pytest.MonkeyPatch, api_url: str, page: str = "Live") -> Any:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SPXCAST_DASHBOARD__API_URL", api_url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    if page != "Live":
        at.sidebar.radio[0].set_value(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: Any) -> str:
    parts = [
        e.value
        for kind in ("markdown", "info", "success", "warning", "error", "caption")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def figures(at: Any) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_live_page_draws_the_session_forecasts_at_their_horizon_an_interval_and_outcomes(
    api: RunningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app_test(monkeypatch, api.base)
    live = figures(at)[0]
    traces = {t.get("name"): t for t in live["data"]}
    candles = traces["bars"]
    assert candles["type"] == "candlestick" and len(candles["x"]) == 120  # the default window
    forecast = traces["forecast (30 min)"]
    assert len(forecast["x"]) >= 100
    # drawn at bar start + 30 min: the first forecast's x is 30 minutes after the first forecast bar
    assert traces["prediction interval"]["fill"] == "toself"
    # a realised outcome lands on the close of the bar it was forecast for (demo labels follow the candles)
    closes = dict(zip(candles["x"], candles["close"], strict=True))
    outcomes = zip(traces["realised"]["x"], traces["realised"]["y"], strict=True)
    landed = [(closes[x], y) for x, y in outcomes if x in closes]
    assert len(landed) > 20
    assert all(abs(close - y) < 1e-6 * close for close, y in landed)
    # the band: one closed shape (upper bounds forward, lower back) per run of forecasts with a finite
    # interval; a forecast without one breaks it and is drawn as an open circle with the API's reason
    band_x, band_y = traces["prediction interval"]["x"], traces["prediction interval"]["y"]
    shapes = " ".join("|" if x is None else "." for x in band_x).split("|")
    unbounded = traces.get("no finite interval", {"x": [], "hovertext": []})
    drawn = sum(len(shape.split()) for shape in shapes) // 2
    assert drawn + len(unbounded["x"]) == len(forecast["x"]) and drawn > 0
    assert all(note for note in unbounded["hovertext"])
    i = 0
    for shape in shapes:
        n = len(shape.split()) // 2
        upper, lower = band_y[i : i + n], band_y[i + n : i + 2 * n][::-1]
        assert all(lo < up for lo, up in zip(lower, upper, strict=True))
        i += 2 * n + 1
    # the newest logged forecast is the current one, with its explanation
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["model"] == f"v{api.champion} (blue)" or metrics["model"].startswith(f"v{api.champion} (")
    assert metrics["forecast return"].endswith("%") and metrics["realised"] == "pending"
    assert any(f["data"][0]["type"] == "bar" for f in figures(at)[1:])  # contributions
    # demo data are from 2024: the page says the market is closed, and what that means
    assert "market is closed" in texts(at)


def test_predict_now_asks_the_api_for_the_newest_bar_and_shows_it(
    api: RunningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def logged() -> list[dict[str, Any]]:
        params = {"instrument": "SPX500_USD", "limit": 10000}
        return httpx.get(f"{api.base}/predictions/history", params=params).json()["rows"]

    before = len(logged())
    at = app_test(monkeypatch, api.base)
    at.button[0].click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["model"].startswith(f"v{api.champion} (")
    deadline = time.monotonic() + 10
    while len(logged()) == before and time.monotonic() < deadline:  # the log is written asynchronously
        time.sleep(0.1)
    newest = logged()[-1]

    assert len(logged()) == before + 1 and parse_ts(newest["bar_ts"]) == api.home.gold["ts"][-1]


def test_forecast_x_is_the_bar_start_plus_the_horizon(api: RunningApi) -> None:
    rows = httpx.get(
        f"{api.base}/predictions/history", params={"instrument": "SPX500_USD", "limit": 10000}
    ).json()["rows"]
    from spxcast.dashboard.prep import forecast_frame

    frame = forecast_frame(rows, 30)
    assert frame.height == FORECAST_BARS
    assert ((frame["target_ts"] - frame["bar_ts"]).dt.total_minutes() == 30).all()


def test_news_page_lists_scored_articles(api: RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app_test(monkeypatch, api.base, "News")
    frame = at.dataframe[0].value
    assert set(frame["title"]) == {
        "Stocks rally as inflation cools",
        "Earnings miss weighs on tech",
        "Fed holds rates steady",
    }
    assert sorted(frame["score"].round(2)) == [-0.55, 0.05, 0.72]
    # the demo models read no news features: said, not faked
    assert "reads no news features" in texts(at)


def test_skill_page_shows_champion_and_shadow_challenger_realised_metrics(
    api: RunningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app_test(monkeypatch, api.base, "Skill")
    figures_by_metric = at.table[0].value  # one row per metric, one column per version
    champion, shadow = f"v{api.champion} (champion)", f"v{api.challenger} (shadow challenger)"
    assert {champion, shadow} <= set(figures_by_metric.columns)
    realised = float(figures_by_metric.loc["realised forecasts", champion])
    assert FORECAST_BARS - 40 <= realised <= FORECAST_BARS
    assert float(figures_by_metric.loc["RMSE (%)", champion]) > 0
    assert -1 < float(figures_by_metric.loc["hit rate", champion]) <= 1
    assert len(figures(at)) == 2  # IC by day, cumulative net PnL
    # next to them, the figures the champion was promoted on (its training run's test and oot splits)
    test = f"v{api.champion} at promotion: test"
    assert {test, f"v{api.champion} at promotion: out-of-time"} <= set(figures_by_metric.columns)
    logged = httpx.get(f"{api.base}/models/{api.champion}/metrics").json()["metrics"]["test"]
    assert float(figures_by_metric.loc["RMSE (%)", test]) == pytest.approx(logged["model"]["rmse"], abs=1e-4)
    assert float(figures_by_metric.loc["RMSE of the zero forecast (%)", test]) == pytest.approx(
        logged["zero"]["rmse"], abs=1e-4
    )
    assert figures_by_metric.loc["mean IC", test] == "—"  # not logged by training: said, not invented
    gates = at.table[1].value  # the gates of the champion's promotion, from the audit trail
    assert {"beats_zero_test", "beats_zero_oot", "max_test_rmse"} <= set(gates.index)
    assert set(gates["passed"]) <= {"yes", "NO"}
    assert "Promoted" in texts(at) and "by **tests**: dashboard tests" in texts(at)


def test_health_page_shows_slots_weights_and_registry_aliases(
    api: RunningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app_test(monkeypatch, api.base, "Health")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["registry champion"] == f"v{api.champion}"
    assert metrics["shadow scoring"] == "on"
    slots = at.dataframe[0].value
    assert sorted(slots["version"].dropna().astype(int)) == sorted([api.champion, api.challenger])
    assert slots["weight"].sum() == pytest.approx(1.0)
    # the monitoring run of the factory: drift headline figures and its open alerts (stale demo data)
    assert metrics["drifted features"] == "0%" and float(metrics["bar age (min)"]) > 60 * 24
    alerts = at.dataframe[1].value
    assert alerts["status"].isin(["open", "acknowledged"]).all() and (alerts["status"] == "open").any()
    # the promotion history: the champion's forced promotion with its gate results, the slot changes
    steps = at.dataframe[2].value
    promoted = steps[(steps["action"] == "promote") & (steps["version"] == api.champion)].iloc[0]
    recorded = next(
        t
        for t in httpx.get(f"{api.base}/models/history").json()["transitions"]
        if t["action"] == "promote" and t["version"] == api.champion
    )
    passed = sum(g["passed"] for g in recorded["gates"])
    assert promoted["gates"].startswith(f"{passed}/{len(recorded['gates'])} passed") and passed >= 1
    assert promoted["by"] == "tests" and promoted["why"] == "dashboard tests"
    assert promoted["forced"] == ("yes" if recorded["forced"] else "")
    assert any(e.label.startswith(f"Gates of v{api.champion} at promote") for e in at.expander)
    changes = at.dataframe[3].value
    assert list(changes["action"]) == ["shadow-on", "deploy"] and changes["why"][1] == "shadow challenger"


def test_health_page_acknowledges_and_resolves_an_alert_with_the_admin_key(
    api: RunningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def alert(alert_id: int) -> dict[str, Any]:
        return next(a for a in httpx.get(f"{api.base}/alerts").json() if a["id"] == alert_id)

    at = app_test(monkeypatch, api.base, "Health")
    listed = at.dataframe[1].value
    alert_id = int(listed.loc[listed["status"] == "open", "id"].iloc[-1])
    at.selectbox[0].set_value(alert_id)
    at.text_input(key="admin_key").input("not-the-admin-key")
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert not at.exception and "not acknowledged" in " ".join(e.value for e in at.error)
    assert "not-the-admin-key" not in texts(at) and alert(alert_id)["status"] == "open"
    at.text_input(key="admin_key").input(KEY)
    at.text_input(key="alert_actor").input("erin")
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Alert {alert_id}" in texts(at) and "acknowledged by erin (dashboard)" in texts(at)
    assert alert(alert_id)["acknowledged_by"] == "erin (dashboard)"
    assert KEY not in texts(at)
    assert at.session_state["admin_key"] == KEY  # kept for this session only, for the next action
    shown = at.dataframe[1].value
    assert shown.loc[shown["id"] == alert_id, "status"].iloc[0] == "acknowledged"  # still listed: active
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert "already acknowledged (by erin (dashboard)" in " ".join(e.value for e in at.error)
    next(b for b in at.button if b.label == "Resolve").click().run()
    assert not at.exception and alert(alert_id)["status"] == "resolved"
    assert alert(alert_id)["resolved_by"] == "erin (dashboard)"


def test_with_the_api_stopped_every_page_says_unreachable_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for page in ("Live", "News", "Skill", "Health"):
        at = app_test(monkeypatch, url, page)
        [error] = at.error
        assert "unreachable" in error.value and url in error.value and "spxcast serve" in error.value


def test_an_api_without_a_model_says_so_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard_factories import wait_healthy

    port = free_port()
    env = {**os.environ, "SPXCAST_HOME": str(tmp_path / "empty"), "SPXCAST_SERVING__FEATURE_REFRESH_S": "60"}
    server = subprocess.Popen(
        [sys.executable, "-m", "spxcast.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        at = app_test(monkeypatch, f"http://127.0.0.1:{port}")
        assert "No model is deployed yet" in "\n".join(w.value for w in at.warning)
        assert "No bars stored yet" in texts(at) or "market is closed" in texts(at)
    finally:
        server.terminate()
        server.wait(30)


# ------------------------------------------------------------------------------------------ the browser
def browser_available() -> None:
    """Skip (or, under SPXCAST_REQUIRE_SERVICES=1, fail) without Debian's chromium or Playwright."""
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium; make system-deps)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (the driver only)")


@contextmanager
def serving_dashboard(api_base: str, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """``spxcast dashboard`` on a free loopback port against ``api_base``; its URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "spxcast.cli.main", "dashboard", "--port", str(port), "--api-url", api_base],
        env={k: v for k, v in env.items() if not k.startswith("SPXCAST_SERVING")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "the dashboard exited"
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(30)
        log.close()


@pytest.fixture(scope="module")
def dashboard(api: RunningApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    browser_available()
    with serving_dashboard(api.base, api.env, tmp_path_factory.mktemp("streamlit") / "dashboard.log") as url:
        yield url


def settled(page: Any) -> None:
    """Wait until Streamlit has finished running the page's script (its status widget is gone)."""
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
    page.wait_for_timeout(1000)


ARTIFACTS = os.environ.get("SPXCAST_TEST_ARTIFACTS")  # read at import: the tests' environment drops SPXCAST_*


def artifacts(tmp_path: Path) -> Path:
    target = Path(ARTIFACTS or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_in_chromium_the_live_page_shows_candles_forecasts_an_interval_and_skill_the_champion(
    dashboard: str, api: RunningApi, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    shots = artifacts(tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(60_000)
            page.goto(f"{dashboard}/?page=Live")
            page.wait_for_selector(".js-plotly-plot .candlestick, .js-plotly-plot g.trace.boxes")
            page.get_by_text("Current prediction").wait_for()
            # the chart re-renders on every refresh (fragment): wait until it holds its traces
            traces = page.wait_for_function(
                """() => {
                    const chart = document.querySelector('.js-plotly-plot');
                    return chart && chart.data && chart.data.length > 1
                        ? chart.data.map(t => [t.type, t.name, t.x.length]) : null;
                }"""
            ).json_value()
            kinds = {name: (kind, n) for kind, name, n in traces}
            assert kinds["bars"][0] == "candlestick" and kinds["bars"][1] == 120
            assert kinds["forecast (30 min)"][1] >= 100 and kinds["prediction interval"][1] >= 4
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shots / "live.png"))
            page.goto(f"{dashboard}/?page=Skill")
            page.get_by_text("R²_OOS vs zero").wait_for()
            table = page.locator("table").first.inner_text()
            assert (
                f"v{api.champion} (champion)" in table and f"v{api.challenger} (shadow challenger)" in table
            )
            page.get_by_text("Gates v").wait_for()
            settled(page)
            page.screenshot(path=str(shots / "skill.png"))
            page.goto(f"{dashboard}/?page=News")
            page.get_by_role("heading", name="News", exact=True).wait_for()
            settled(page)
            page.screenshot(path=str(shots / "news.png"))
            page.set_viewport_size({"width": 1400, "height": 2600})  # alerts and the promotion history
            page.goto(f"{dashboard}/?page=Health")
            page.get_by_text("Serving slot changes").wait_for()
            settled(page)
            page.screenshot(path=str(shots / "health.png"))
        finally:
            browser.close()
    assert all((shots / f"{n}.png").stat().st_size > 10_000 for n in ("live", "skill", "news", "health"))


def test_the_client_tells_a_missing_route_from_an_error_and_an_unreachable_api(api: RunningApi) -> None:
    from spxcast.api_client import Api, ApiError, ApiUnreachable, RouteMissing

    client = Api(api.base)
    with pytest.raises(RouteMissing, match="not a route of this API"):
        client._request("GET", "/no-such-route")
    with pytest.raises(ApiError, match="unknown instrument") as raised:
        client.history("EUR_USD")
    assert not isinstance(raised.value, RouteMissing) and raised.value.status == 404
    with pytest.raises(ApiError, match="unknown instrument"):
        client.bars("EUR_USD")
    bars = client.bars("SPX500_USD", limit=3)["bars"]
    assert len(bars) == 3 and bars[0]["ts"] < bars[-1]["ts"]

    end = parse_ts(bars[1]["ts"])
    before = [parse_ts(b["ts"]) for b in client.bars("SPX500_USD", limit=2, end=end)["bars"]]
    assert len(before) == 2 and before[0] < before[1] == parse_ts(bars[0]["ts"])  # bars starting before end
    with pytest.raises(ApiUnreachable, match="cannot reach"):
        Api(f"http://127.0.0.1:{free_port()}", timeout_s=2).models()


REPLAY_BARS = 150
REPLAY_SPEED = "240x"  # 4 M1 bars a second: the replay takes ~40 s, an outcome arrives 30 bars on


def replay_position(app_db: Path) -> datetime:
    """The start of the newest bar the live loop has processed (its position in the app database)."""
    import sqlite3

    with closing(sqlite3.connect(app_db)) as connection:
        (value,) = connection.execute("SELECT MAX(bar_ts) FROM live_positions").fetchone()
    return parse_ts(value)


def shown_counts(pattern: re.Pattern[str], caption: str) -> tuple[int, int]:
    """(forecasts, realised outcomes) of the Live page's caption."""
    found = pattern.search(caption)
    assert found is not None, caption
    return int(found[1]), int(found[2])


def test_in_chromium_a_replay_moves_the_live_page_and_realised_outcomes_arrive_without_a_reload(
    api: RunningApi, tmp_path: Path
) -> None:
    """``make up REPLAY='FROM TO'`` in small: ``spxcast serve --live --replay`` on the demo home (its own
    app database), ``spxcast dashboard`` polling every second, one page load in Chromium. The page follows
    the replay: forecasts and realised outcomes arrive while the page stays loaded (a marker set on the
    window survives: no full reload), and no outcome is drawn before the bar it is the close of."""
    browser_available()
    from playwright.sync_api import sync_playwright

    stamps = api.home.gold["ts"]
    start, end = stamps[-REPLAY_BARS], stamps[-1] + (stamps[-1] - stamps[-2])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **api.env,
        "SPXCAST_DB__URL": f"sqlite:///{tmp_path / 'replay.db'}",
        "SPXCAST_SERVING__SPOOL_PATH": str(tmp_path / "spool.ndjson"),
        # the loop attaches outcomes on its own clock; the server's background sync stays out of the way
        "SPXCAST_SERVING__FEATURE_REFRESH_S": "3600",
        "SPXCAST_LIVE__FEATURE_STORE": "none",
        "SPXCAST_DASHBOARD__REFRESH_S": "1",
    }
    command = [
        sys.executable, "-m", "spxcast.cli.main", "serve", "--port", str(port),
        "--live", "--replay", start.isoformat(), end.isoformat(), "--speed", REPLAY_SPEED,
    ]  # fmt: skip
    log = (tmp_path / "replay-api.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    pattern = re.compile(r"(\d+) forecasts on this chart, (\d+) with a realised outcome")
    try:
        from dashboard_factories import wait_healthy

        with (
            serving_dashboard(base, env, tmp_path / "dashboard.log") as url,  # starts while the API does
            sync_playwright() as playwright,
        ):
            wait_healthy(base, server)
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1400})
                page.set_default_timeout(60_000)
                page.goto(f"{url}/?page=Live")
                caption = page.get_by_text(pattern)
                caption.wait_for()
                page.evaluate("window.spxcastLoaded = true")
                counts = [shown_counts(pattern, caption.inner_text())]
                deadline = time.monotonic() + 60
                while counts[-1][1] < counts[0][1] + 10 or counts[-1][0] <= counts[0][0]:
                    assert time.monotonic() < deadline, f"the live page did not move: {counts}"
                    page.wait_for_timeout(1000)
                    counts.append(shown_counts(pattern, caption.inner_text()))
                assert page.evaluate("window.spxcastLoaded") is True, "the page was reloaded"
                assert "Forecasts are being made for stored bars" in page.content()
                chart = page.evaluate(
                    """() => Object.fromEntries(document.querySelector('.js-plotly-plot').data
                        .map(t => [t.name, t.x]))"""
                )
                newest_bar = max(chart["bars"])
                assert (
                    chart["realised"] and max(chart["realised"]) <= newest_bar
                )  # drawn as of the bars shown
                # and the API attached no outcome before the replay reached the bar it is the close of
                rows = httpx.get(
                    f"{base}/predictions/history", params={"instrument": "SPX500_USD", "limit": 10000}
                ).json()["rows"]
                reached = replay_position(tmp_path / "replay.db")  # read after the rows: it only advances
                known = [parse_ts(r["bar_ts"]) for r in rows if r["realised_return_pct"] is not None]
                assert known and max(known) + timedelta(minutes=30) <= reached
                # between two refreshes: the candles drawn
                page.wait_for_selector(".js-plotly-plot .candlestick, .js-plotly-plot g.trace.boxes")
                page.screenshot(path=str(artifacts(tmp_path) / "live-replay.png"))
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert server.returncode in (0, -15), (tmp_path / "replay-api.log").read_text()[-3000:]
