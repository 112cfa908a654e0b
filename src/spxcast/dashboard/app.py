"""The dashboard's Streamlit script (``spxcast dashboard`` runs it): Live, News, Skill and Health pages.

A client of the API only (:class:`spxcast.api_client.Api` at ``dashboard.api_url``). Every state a
person can meet is said in words with what to do: the API unreachable, no model deployed, the market
closed, and a route this API does not have yet. The page is chosen in the sidebar or with ``?page=``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from spxcast.api_client import Api, ApiError, ApiUnreachable, RouteMissing
from spxcast.config import Settings, load_settings
from spxcast.dashboard import prep
from spxcast.timeutil import bar_length

PAGES = ("Live", "News", "Skill", "Health")
ARRIVES = {
    "/monitoring/latest": "issue 13 (monitoring)",
    "/alerts": "issue 13 (monitoring)",
    "/bars": "a server with the /bars route",
}


def missing(route: str) -> None:
    """The honest state of a route this API does not have (yet)."""
    later = ARRIVES.get(route)
    st.info(
        f"Not available from this API: it has no `{route}` route"
        + (f" (arrives with {later})." if later else ".")
    )


def unreachable(api: Api, exc: ApiUnreachable) -> None:
    st.error(
        f"**The spxcast API is unreachable** at `{api.base_url}`.\n\n{exc}\n\n"
        "What to do: start it (`spxcast serve`, or `make up` for the whole local stack), or point the "
        "dashboard at the right address (`spxcast dashboard --api-url URL` or SPXCAST_DASHBOARD__API_URL). "
        "This page retries on every refresh."
    )


NO_MODEL = (
    "**No model is deployed yet**, so there are no forecasts. What to do: train and promote a model "
    "(`make demo`, or `spxcast pipeline run full` then `spxcast models promote`), then restart the API or "
    "deploy it (`spxcast serve deploy VERSION --reason ...`)."
)


def has_model(models: dict[str, Any]) -> bool:
    return any(slot["version"] is not None for slot in models["slots"])


def newest_bars(
    api: Api, settings: Settings, limit: int = 2000, end: datetime | None = None
) -> pl.DataFrame | None:
    """The newest stored bars starting before ``end`` (default all) the API exposes (None when it has no
    /bars route)."""
    try:
        document = api.bars(settings.instrument, limit, end)
    except RouteMissing:
        return None
    return prep.bars_frame(document["bars"])


# ----------------------------------------------------------------------------------------------- Live
def live_page(api: Api, settings: Settings) -> None:
    st.title(f"Live · {settings.instrument} {settings.granularity}")
    models = api.models()
    if not has_model(models):
        st.warning(NO_MODEL)
    window = st.sidebar.select_slider("Bars shown", options=[60, 120, 240, 480], value=120)

    @st.fragment(run_every=settings.dashboard.refresh_s)
    def refreshed() -> None:
        try:
            live_view(api, settings, window)
        except ApiUnreachable as exc:
            unreachable(api, exc)

    refreshed()


def live_view(api: Api, settings: Settings, window: int) -> None:
    bar = bar_length(settings.granularity)
    now = datetime.now(UTC)
    newest_forecast = next(iter(api.history(settings.instrument, limit=1, newest=True)), None)
    bars = newest_bars(api, settings)
    stored = bars["ts"][-1] if bars is not None and bars.height else None
    end = prep.following(newest_forecast, stored, now, bar)  # a replay: the chart follows the forecasts
    if end is not None:
        bars = newest_bars(api, settings, end=end)
    session = prep.latest_session(bars, bar, window=window) if bars is not None else None
    start = (
        None
        if session is None or session.height == 0
        else session["ts"][0] - timedelta(minutes=settings.horizon_minutes)
    )
    rows = api.history(settings.instrument, start=start, limit=10_000)
    forecasts = prep.forecast_frame(rows, settings.horizon_minutes)
    newest = (
        session["ts"][-1]
        if session is not None and session.height
        else (forecasts["bar_ts"][-1] if forecasts.height else None)
    )
    if end is not None and newest_forecast is not None:
        st.success(
            f"Forecasts are being made for stored bars (a replay, or the live loop catching up): the newest "
            f"is for the bar starting {end - bar:%Y-%m-%d %H:%M} UTC, logged "
            f"{prep.ago(now - prep.parse_ts(newest_forecast['created_at']))} ago. The chart follows them."
        )
    else:
        state = prep.market_state(newest, now, bar)
        (st.success if state.open else st.info)(state.message)
    if session is None:
        missing("/bars")
    if session is not None and session.height:
        forecasts = prep.as_of(forecasts, session["ts"][-1])
        forecasts = forecasts.filter(pl.col("target_ts") >= session["ts"][0])  # drawn inside the chart
    st.plotly_chart(live_figure(session, forecasts, settings), use_container_width=True, key="live-chart")
    realised = forecasts.filter(pl.col("realised_pct").is_not_null()).height
    notes = forecasts["interval_note"].drop_nulls()
    st.caption(
        f"{forecasts.height} forecasts on this chart, {realised} with a realised outcome. Each forecast "
        f"of the return over {settings.horizon_minutes} min is drawn at the bar whose close it forecasts "
        f"(bar start + {settings.horizon_minutes} min), with its prediction interval; the realised outcome "
        "appears there once the horizon has passed."
        + (
            f" {notes.len()} without a finite interval (open circles): "
            + "; ".join(f"{n}× {note}" for note, n in notes.value_counts(sort=True).iter_rows())
            + "."
            if notes.len()
            else ""
        )
    )
    current(api, settings, rows)


def live_figure(session: pl.DataFrame | None, forecasts: pl.DataFrame, settings: Settings) -> go.Figure:
    figure = go.Figure()
    if session is not None and session.height:
        figure.add_trace(
            go.Candlestick(
                x=session["ts"].to_list(),
                open=session["open"].to_list(),
                high=session["high"].to_list(),
                low=session["low"].to_list(),
                close=session["close"].to_list(),
                name="bars",
            )
        )
    elif forecasts.height:
        figure.add_trace(
            go.Scatter(x=forecasts["bar_ts"].to_list(), y=forecasts["price"].to_list(), name="close")
        )
    # One closed shape per run of forecasts with a finite interval: never drawn across one without.
    band_x, band_y = prep.band(forecasts)
    if band_x:
        figure.add_trace(
            go.Scatter(
                x=band_x,
                y=band_y,
                fill="toself",
                fillcolor="rgba(99,110,250,0.18)",
                line={"width": 0},
                hoverinfo="skip",
                name="prediction interval",
            )
        )
    unbounded = forecasts.filter(pl.col("interval_note").is_not_null())
    if unbounded.height:
        figure.add_trace(
            go.Scatter(
                x=unbounded["target_ts"].to_list(),
                y=unbounded["predicted_price"].to_list(),
                mode="markers",
                marker={"size": 9, "symbol": "circle-open", "color": "rgb(239,85,59)"},
                hovertext=unbounded["interval_note"].to_list(),
                name="no finite interval",
            )
        )
    if forecasts.height:
        figure.add_trace(
            go.Scatter(
                x=forecasts["target_ts"].to_list(),
                y=forecasts["predicted_price"].to_list(),
                mode="lines+markers",
                marker={"size": 4},
                line={"color": "rgb(99,110,250)"},
                name=f"forecast ({settings.horizon_minutes} min)",
            )
        )
        outcome = forecasts.filter(pl.col("realised_price").is_not_null())
        figure.add_trace(
            go.Scatter(
                x=outcome["target_ts"].to_list(),
                y=outcome["realised_price"].to_list(),
                mode="markers",
                marker={"size": 5, "color": "black", "symbol": "x"},
                name="realised",
            )
        )
    figure.update_layout(
        uirevision="live",  # a refresh keeps the reader's zoom and hidden traces
        height=520,
        xaxis_rangeslider_visible=False,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        xaxis_title="bar start (UTC)",
        yaxis_title="price",
    )
    return figure


def current(api: Api, settings: Settings, rows: list[dict[str, Any]]) -> None:
    st.subheader("Current prediction")
    served = [r for r in rows if r.get("bar_ts") is not None]
    latest = served[-1] if served else None
    if st.button("Predict now", help="POST /predict for the newest closed bar (logged like any prediction)"):
        try:
            made = api.predict(settings.instrument)
            latest = {**made, "realised_return_pct": None}  # a PredictResponse: interval, model
        except ApiError as exc:
            st.error(f"The API refused the prediction: {exc.detail}")
    if latest is None:
        st.info(
            "No forecast logged yet. The live loop (`spxcast serve --live`, issue 12) logs one per closed "
            "bar; press **Predict now** to forecast the newest closed bar."
        )
        return
    made_at = prep.parse_ts(latest["bar_ts"])
    cols = st.columns([1, 1.6, 1, 1])
    cols[0].metric("forecast return", f"{latest['predicted_return_pct']:+.4f} %")
    lower, upper = latest.get("lower_pct"), latest.get("upper_pct")
    if isinstance(latest.get("interval"), dict):  # a PredictResponse
        lower, upper = latest["interval"]["lower_pct"], latest["interval"]["upper_pct"]
    note = latest.get("interval_note") or (
        None if lower is not None and upper is not None else "no finite interval for this forecast"
    )
    cols[1].metric(
        "prediction interval",
        f"{_bound(lower, '−∞')} … {_bound(upper, '+∞')} %"
        if lower is not None or upper is not None
        else "n/a",
        help=note,
    )
    realised = latest.get("realised_return_pct")
    cols[2].metric("realised", "pending" if realised is None else f"{realised:+.4f} %")
    version = latest.get("model_version") or latest.get("model", {}).get("version")
    cols[3].metric("model", f"v{version} ({latest['slot']})")
    st.caption(
        f"Made at the close of the bar starting {made_at:%Y-%m-%d %H:%M} UTC, for the return to "
        f"{made_at + timedelta(minutes=settings.horizon_minutes):%H:%M} UTC's bar close."
    )
    explanation(api, latest["prediction_id"])


def _bound(value: float | None, infinite: str) -> str:
    return infinite if value is None else f"{value:+.3f}"


def explanation(api: Api, prediction_id: str, prefix: str | None = None, title: str = "Why") -> None:
    try:
        document = api.explain(prediction_id)
    except ApiError as exc:
        st.info(f"No explanation for this prediction: {exc.detail}")
        return
    top = prep.contributions(document["explanation"], top=12, prefix=prefix)
    st.markdown(
        f"**{title}** — {document['explanation']['method']}; "
        f"base {document['explanation']['base_pct']:+.4f} %, "
        "contributions in percentage points of the forecast:"
    )
    if top.height == 0:
        st.info(
            "The model that made this forecast reads no news features." if prefix else "No contributions."
        )
        return
    figure = go.Figure(
        go.Bar(x=top["contribution_pct"].to_list(), y=top["feature"].to_list(), orientation="h")
    )
    figure.update_layout(
        height=40 + 24 * top.height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={"autorange": "reversed"},
    )
    st.plotly_chart(figure, use_container_width=True, key=f"explain-{prefix}")


# ----------------------------------------------------------------------------------------------- News
def news_page(api: Api, settings: Settings) -> None:
    st.title("News")
    items = api.news(50)
    if not items:
        st.info(
            "No scored articles: the news pipeline has not run or news is off (market-only). Run "
            "`spxcast ingest news` and `spxcast news score`, or the live loop."
        )
    else:
        frame = pl.DataFrame(items).select("received_at", "score", "title", "url", "scorer")
        st.dataframe(
            frame.to_pandas(),
            hide_index=True,
            column_config={
                "url": st.column_config.LinkColumn("link"),
                "score": st.column_config.NumberColumn("score (p_pos − p_neg)", format="%.3f"),
            },
            use_container_width=True,
        )
    st.subheader("News signals in the current forecast")
    newest = newest_prediction(api, settings)
    if newest is None:
        st.info("No forecast logged yet (see the Live page).")
        return
    explanation(api, newest, prefix=prep.NEWS_PREFIX, title="News features' contributions")


def newest_prediction(api: Api, settings: Settings) -> str | None:
    """The id of the newest served forecast (from the newest stored bar's session)."""
    bars = newest_bars(api, settings, limit=1)
    start = None if bars is None or bars.height == 0 else bars["ts"][-1] - timedelta(days=7)
    rows = [r for r in api.history(settings.instrument, start=start, limit=10_000) if r.get("bar_ts")]
    return rows[-1]["prediction_id"] if rows else None


# ----------------------------------------------------------------------------------------------- Skill
def skill_page(api: Api, settings: Settings) -> None:
    st.title("Skill")
    models = api.models()
    if not has_model(models):
        st.warning(NO_MODEL)
    days = st.sidebar.selectbox("Skill window (days before the newest bar)", [1, 7, 30, 365], index=2)
    bars = newest_bars(api, settings, limit=1)
    start = None if bars is None or bars.height == 0 else bars["ts"][-1] - timedelta(days=days)
    served = prep.realised(api.history(settings.instrument, start=start, limit=10_000))
    shadow = prep.realised(api.history(settings.instrument, start=start, limit=10_000, shadow=True))
    champion = models.get("champion")
    columns: dict[str, prep.Skill | None] = {}
    for (version,), group in served.group_by("model_version", maintain_order=True):
        role = "champion" if version == champion else "served"
        columns[f"v{version} ({role})"] = prep.skill(
            group, settings.horizon_minutes, settings.training.cost_bps
        )
    for (version,), group in shadow.group_by("model_version", maintain_order=True):
        columns[f"v{version} (shadow challenger)"] = prep.skill(
            group, settings.horizon_minutes, settings.training.cost_bps
        )
    promoted = promoted_columns(api, champion)
    if not columns:
        st.info(
            "No realised forecasts yet: an outcome is known one horizon "
            f"({settings.horizon_minutes} min) after the bar, once the API has the bar's label. "
            "Forecasts come from the live loop or /predict."
        )
    else:
        st.markdown(
            f"Realised over the forecasts whose outcome is known (window: {days} days before the newest "
            f"bar); net PnL holds sign(forecast) for the horizon at {settings.training.cost_bps:g} bp "
            "round trip."
        )
    if columns or promoted:
        st.table(shown(prep.skill_table(columns, promoted)))
    if promoted:
        st.caption(
            f"The last columns are the figures v{champion} was evaluated and promoted on (test and "
            "out-of-time splits of its training run, `GET /models/{version}/metrics`), with the same "
            "definitions; the mean of per-day ICs is not logged by training (— there)."
        )
    if columns:
        ic = go.Figure()
        pnl = go.Figure()
        for name, value in columns.items():
            if value is None:
                continue
            ic.add_trace(go.Bar(x=value.ic["day"].to_list(), y=value.ic["ic"].to_list(), name=name))
            pnl.add_trace(
                go.Scatter(
                    x=value.pnl["bar_ts"].to_list(), y=value.pnl["cumulative_net_pct"].to_list(), name=name
                )
            )
        left, right = st.columns(2)
        period = next(v.ic_by for v in columns.values() if v is not None)
        ic.update_layout(title=f"IC by {period}", height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10})
        pnl.update_layout(
            title="cumulative net PnL (%)", height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10}
        )
        left.plotly_chart(ic, use_container_width=True, key="ic")
        right.plotly_chart(pnl, use_container_width=True, key="pnl")
    if champion is not None:
        st.subheader(f"Gates v{champion} was promoted on")
        champion_gates(api, champion)


def promoted_columns(api: Api, champion: int | None) -> dict[str, dict[str, float | None]]:
    """The champion's logged test and out-of-time figures as skill-table columns (empty, after saying why,
    when there are none)."""
    if champion is None:
        return {}
    try:
        metrics = api.version_metrics(champion)["metrics"]
    except RouteMissing:
        missing("/models/{version}/metrics")
        return {}
    except ApiError as exc:
        st.info(f"No promotion figures for v{champion}: {exc.detail}")
        return {}
    names = {"test": f"v{champion} at promotion: test", "oot": f"v{champion} at promotion: out-of-time"}
    return {name: prep.promoted_figures(metrics, split) for split, name in names.items() if split in metrics}


def champion_gates(api: Api, champion: int) -> None:
    try:
        history = api.model_history()
    except RouteMissing:
        missing("/models/history")
        return
    promotion = prep.promotion_of(history, champion)
    if promotion is None:
        st.info(
            f"v{champion} has no promotion in the registry's audit trail (it was made champion before the "
            "trail was kept, or by hand in MLflow)."
        )
        return
    st.markdown(
        f"Promoted {prep.parse_ts(promotion['at']):%Y-%m-%d %H:%M} UTC by **{promotion['actor']}**: "
        f"{promotion['reason']}"
        + (" — **failing gates overridden (forced)**." if promotion["forced"] else ".")
    )
    gates = prep.gates_frame(promotion["gates"])
    if gates.height:
        st.table(gates.to_pandas().set_index("gate"))
    else:
        st.info("No gate results were recorded with this promotion.")


def monitoring_summary(api: Api) -> dict[str, Any] | None:
    """The latest monitoring summary, or None after saying why there is none."""
    try:
        return api.monitoring()
    except RouteMissing:
        missing("/monitoring/latest")
    except ApiError as exc:
        if exc.status != 404:
            raise
        st.info(f"No monitoring summary: {exc.detail}")
    return None


def shown(table: pl.DataFrame) -> Any:
    """The skill table for reading: counts whole, figures to 4 decimals, unknown as a dash."""

    def cell(metric: str, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:.0f}" if metric == "realised forecasts" else f"{value:.4f}"

    columns = [c for c in table.columns if c != "metric"]
    rows = {c: [cell(m, v) for m, v in zip(table["metric"], table[c], strict=True)] for c in columns}
    return pl.DataFrame({"metric": table["metric"], **rows}).to_pandas().set_index("metric")


# ----------------------------------------------------------------------------------------------- Health
def health_page(api: Api, settings: Settings) -> None:
    st.title("Health")
    ready = api.ready()
    if ready["ready"]:
        st.success(
            "The API is ready: a model is live, features are loaded and the prediction log takes rows."
        )
    else:
        st.warning("The API is not ready:\n\n" + "\n".join(f"- {p}" for p in ready["problems"]))
    models = api.models()
    st.subheader("Slots and traffic")
    if not has_model(models):
        st.warning(NO_MODEL)
    slots = pl.DataFrame(models["slots"]).to_pandas()
    st.dataframe(slots, hide_index=True, use_container_width=True)
    cols = st.columns(3)
    cols[0].metric("registry champion", "none" if models["champion"] is None else f"v{models['champion']}")
    cols[1].metric(
        "registry challenger", "none" if models["challenger"] is None else f"v{models['challenger']}"
    )
    cols[2].metric("shadow scoring", "on" if models["shadow"] else "off")
    if models.get("registry_error"):
        st.warning(f"The registry could not be read: {models['registry_error']}")
    st.subheader("Freshness")
    bars = newest_bars(api, settings, limit=1)
    if bars is None:
        missing("/bars")
    else:
        newest = bars["ts"][-1] if bars.height else None
        state = prep.market_state(newest, datetime.now(UTC), bar_length(settings.granularity))
        (st.success if state.open else st.info)(state.message)
    st.subheader("Drift and monitoring")
    summary = monitoring_summary(api)
    if summary is not None:
        figures = prep.drift_figures(summary)
        for column, (label, value) in zip(st.columns(len(figures)), figures, strict=True):
            column.metric(label, value)
        drifted = summary.get("drifted_features") or []
        st.markdown(f"Drifted features: {', '.join(drifted) if drifted else 'none'}.")
        if summary.get("report_url"):
            st.markdown(f"[Latest drift report]({api.base_url.rstrip('/')}{summary['report_url']})")
        with st.expander("The whole summary"):
            st.json(summary)
    st.subheader("Open alerts")
    alerts_section(api)
    st.subheader("Promotion history")
    promotion_history(api)


ALERT_ACTIONS = {"Acknowledge": ("ack", "acknowledged"), "Resolve": ("resolve", "resolved")}


def alerts_section(api: Api) -> None:
    """Open and acknowledged alerts, and a form to acknowledge or resolve one with the admin key.

    The key lives in this browser session's state only (a password field): sent in the header of the one
    request, never shown, logged or put in the URL."""
    said = st.session_state.pop("alert_said", None)
    if said is not None:
        (st.success if said[0] else st.error)(said[1])
    try:
        alerts = api.alerts("open") + api.alerts("acknowledged")
    except RouteMissing:
        missing("/alerts")
        return
    if not alerts:
        st.success("No open alerts.")
        return
    alerts.sort(key=lambda a: a["id"], reverse=True)
    shown_columns = ["id", "status", "severity", "key", "message", "raised_at", "last_seen", "count"]
    frame = pl.DataFrame(alerts).select([c for c in [*shown_columns, "acknowledged_by"] if c in alerts[0]])
    st.dataframe(frame.to_pandas(), hide_index=True, use_container_width=True)
    with st.form("alert-action"):
        left, middle, right = st.columns([1, 2, 2])
        alert_id = left.selectbox("Alert", [a["id"] for a in alerts])
        key = middle.text_input(
            "Admin key",
            type="password",
            key="admin_key",
            help="X-Admin-Key; kept in this browser session only",
        )
        actor = right.text_input("Your name (recorded on the alert)", key="alert_actor")
        pressed = [name for name in ALERT_ACTIONS if st.form_submit_button(name)]
    if not pressed:
        return
    route, done = ALERT_ACTIONS[pressed[0]]
    if not key:
        st.error("Type the admin key (SPXCAST_SERVING__ADMIN_KEY of the API) first.")
        return
    who = f"{actor.strip()} (dashboard)" if actor.strip() else "dashboard"
    try:
        alert = api.alert_action(int(alert_id), route, key, who)  # type: ignore[arg-type]
    except RouteMissing:
        st.info(
            f"This API cannot change alerts (no POST /alerts/{{id}}/{route} route); on the server: "
            f"`spxcast monitor alerts {route} {alert_id}`."
        )
        return
    except ApiError as exc:
        st.error(f"Alert {alert_id} not {done}: {exc.detail}")
        return
    st.session_state["alert_said"] = (True, f"Alert {alert['id']} ({alert['key']}) {done} by {who}.")
    st.rerun()


def promotion_history(api: Api) -> None:
    """The registry's steps with their gate results and the serving slots' changes (``GET
    /models/history``), newest first."""
    try:
        history = api.model_history()
    except RouteMissing:
        missing("/models/history")
        return
    transitions = prep.transitions_frame(history)
    st.markdown(f"Registry steps of `{history['model_name']}` (who moved which version, when and why):")
    if transitions.height:
        st.dataframe(transitions.to_pandas(), hide_index=True, use_container_width=True)
    else:
        st.info("No registry steps recorded yet (`spxcast models promote` records one).")
    for t in [t for t in history["transitions"] if t["gates"] is not None][:5]:
        title = f"Gates of v{t['version']} at {t['action']} ({prep.parse_ts(t['at']):%Y-%m-%d %H:%M} UTC)"
        with st.expander(title + (" — forced" if t["forced"] else "")):
            st.table(prep.gates_frame(t["gates"]).to_pandas().set_index("gate"))
    changes = prep.slot_changes_frame(history)
    st.markdown("Serving slot changes (deploys, swaps, rollbacks, traffic weights, shadow):")
    if changes.height:
        st.dataframe(changes.to_pandas(), hide_index=True, use_container_width=True)
    else:
        st.info("No slot changes: the API serves the registry's champion as loaded at start.")


# ----------------------------------------------------------------------------------------------- main
RENDER: dict[str, Callable[[Api, Settings], None]] = {
    "Live": live_page,
    "News": news_page,
    "Skill": skill_page,
    "Health": health_page,
}


def main() -> None:
    st.set_page_config(page_title="spxcast", layout="wide")
    settings = load_settings()
    api = Api(settings.dashboard.api_url, settings.dashboard.timeout_s)
    wanted = str(st.query_params.get("page", "Live")).capitalize()
    page = st.sidebar.radio("Page", PAGES, index=PAGES.index(wanted) if wanted in PAGES else 0)
    st.query_params["page"] = page
    st.sidebar.caption(f"API: {api.base_url}")
    try:
        RENDER[page](api, settings)
    except ApiUnreachable as exc:
        unreachable(api, exc)
    except ApiError as exc:
        st.error(f"The API answered with an error: {exc}. What to do: check the API's log; retry later.")


main()
