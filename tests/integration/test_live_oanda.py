"""The live loop's OANDA polling against the loopback OANDA server of test_market_oanda: a forming
(incomplete) candle is not taken until a later poll sees it complete; 429 and 5xx answers are retried."""

from __future__ import annotations

from datetime import datetime, timedelta

from test_market_oanda import START, FakeOanda, client, oanda_candles, server  # noqa: F401  (fixture)

from spxcast.serving.live.sources import OandaPolling


def _time(candle: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(candle["time"]).replace("000000000Z", "+00:00"))


def test_polling_takes_a_candle_only_once_it_is_complete_and_retries_failures(
    server: tuple[str, FakeOanda],  # noqa: F811
) -> None:
    base_url, state = server
    state.candles = oanda_candles(40)  # 39 complete, the 40th still forming
    sleeps: list[float] = []
    clock = {"now": _time(state.candles[-1])}
    polling = OandaPolling(client(base_url, sleeps), "SPX500_USD", "M1", 1.0, START, lambda: clock["now"])

    first = polling.poll(None)
    assert first["ts"].to_list() == [c["time"] for c in state.candles[:39]]
    after = _time(state.candles[38])

    again = polling.poll(after)
    assert again.is_empty(), "the forming candle is not taken while incomplete"

    state.candles[-1]["complete"] = True
    state.candles += oanda_candles(41)[-1:]  # the next bar starts forming
    state.failures = [(429, {"Retry-After": "0.001"}), (503, {}), (500, {})]
    clock["now"] = _time(state.candles[-1])
    third = polling.poll(after)
    assert third["ts"].to_list() == [state.candles[39]["time"]], "exactly the bar that completed"
    assert len(sleeps) == 3, "429, 503 and 500 were each retried"
    asked = [r for r in state.requests if r["query"].get("from")][-1]
    resumed = datetime.fromisoformat(asked["query"]["from"][0].replace("Z", "+00:00"))
    assert resumed == after + timedelta(minutes=1), (
        "polling resumes at the bar after the newest processed one"
    )
