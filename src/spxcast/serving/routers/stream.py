"""``/ws/market-stream``: each closed bar with its predictions, and each realised outcome, as they happen.

The route only relays what the live loop publishes (through the app's :class:`~spxcast.serving.live.hub.
StreamHub`). Subscribe to instruments with ``?instruments=SPX500_USD,EUR_USD`` (none = all) or by sending
``{"subscribe": ["SPX500_USD"]}``. Frames are JSON: ``{"type": "bar", ...}``, ``{"type": "outcome", ...}``
(see docs/live.md). A client more than ``live.client_queue`` frames behind is closed with code 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from spxcast.serving.live.hub import DROPPED, StreamHub, Subscriber, encode

router = APIRouter(tags=["stream"])

SLOW_CLIENT = 1008


def _instruments(text: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (text or "").split(",") if part.strip())


async def _listen(websocket: WebSocket, subscriber: Subscriber) -> None:
    """Subscription changes from the client; returns when it disconnects."""
    while True:
        message = await websocket.receive_text()
        try:
            wanted = json.loads(message).get("subscribe")
        except (ValueError, AttributeError):
            wanted = None
        if isinstance(wanted, list) and all(isinstance(i, str) for i in wanted):
            subscriber.instruments = frozenset(wanted)
            await subscriber.queue.put(encode({"type": "subscribed", "instruments": sorted(wanted)}))
        else:
            await subscriber.queue.put(
                encode({"type": "error", "detail": 'send {"subscribe": ["INSTRUMENT", ...]}'})
            )


@router.websocket("/ws/market-stream")
async def market_stream(websocket: WebSocket, instruments: str | None = None) -> None:
    hub: StreamHub = websocket.app.state.hub
    await websocket.accept()
    subscriber = hub.subscribe(_instruments(instruments))
    listener = asyncio.create_task(_listen(websocket, subscriber))
    try:
        await websocket.send_text(
            encode({"type": "subscribed", "instruments": sorted(subscriber.instruments)})
        )
        while True:
            getter = asyncio.ensure_future(subscriber.queue.get())
            done, _ = await asyncio.wait({getter, listener}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return  # the client went away
            text = getter.result()
            if text == DROPPED:
                await websocket.close(SLOW_CLIENT, f"too slow: {hub.capacity} frames behind the stream")
                return
            await websocket.send_text(text)
            subscriber.sent += 1
    except WebSocketDisconnect:
        return
    finally:
        hub.unsubscribe(subscriber)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await listener
