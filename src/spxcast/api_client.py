"""A thin HTTP client of the spxcast API (httpx), shared by the dashboard, `spxcast serve
deploy|rollback|weights|shadow` and the monitoring loop's shadow deploys: one method per route they use.

Methods return the wire documents (``spxcast.serving.schemas``) as parsed JSON. Failures become three
errors a page can explain: :class:`ApiUnreachable` (nothing answers at the URL), :class:`RouteMissing`
(this API has no such route: an older server, or a feature that has not landed) and :class:`ApiError`
(the API answered with an error; its message is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx

from spxcast.errors import SpxcastError, redact, register_secret


class ApiUnreachable(SpxcastError):
    """No answer from the API (connection refused, timeout, DNS)."""


class ApiError(SpxcastError):
    """The API answered with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"API error {status}: {detail}")
        self.status = status
        self.detail = detail


class RouteMissing(ApiError):
    """The API has no such route (404 from the router itself, not from a handler)."""


@dataclass(frozen=True)
class Api:
    """The API at ``base_url`` (e.g. ``http://127.0.0.1:8000``); each request times out after
    ``timeout_s`` seconds."""

    base_url: str
    timeout_s: float = 5.0

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = self.base_url.rstrip("/") + path
        try:
            response = httpx.request(
                method,
                url,
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=body,
                headers=headers,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ApiUnreachable(
                f"cannot reach the spxcast API at {self.base_url} ({type(exc).__name__}: {redact(str(exc))})"
            ) from exc
        if response.status_code < 400:
            return response.json()
        try:
            document = response.json()
        except ValueError:
            document = {"error": "", "detail": response.text[:300]}
        detail = document.get("detail") if isinstance(document, dict) else document
        text = redact(detail if isinstance(detail, str) else str(detail))
        routed = isinstance(document, dict) and document.get("error") in ("http error", None)
        if response.status_code in (404, 405) and routed and detail in ("Not Found", "Method Not Allowed"):
            raise RouteMissing(response.status_code, f"{method} {path} is not a route of this API")
        raise ApiError(response.status_code, text)

    # ----- reads
    def health(self) -> dict[str, Any]:
        """GET /health: the process is alive."""
        return dict(self._request("GET", "/health"))

    def ready(self) -> dict[str, Any]:
        """GET /ready: ``{"ready": bool, "problems": [...]}`` (a 503 still carries the document)."""
        try:
            return dict(self._request("GET", "/ready"))
        except ApiError as exc:
            if exc.status == 503:
                return {"ready": False, "problems": [exc.detail]}
            raise

    def models(self) -> dict[str, Any]:
        """GET /models: registry champion/challenger, slots, traffic weights, shadow state."""
        return dict(self._request("GET", "/models"))

    def history(
        self,
        instrument: str,
        start: datetime | None = None,
        limit: int = 1000,
        shadow: bool = False,
        newest: bool = False,
    ) -> list[dict[str, Any]]:
        """GET /predictions/history: logged predictions (oldest first) whose bar starts at or after
        ``start``, with the realised return once the horizon has passed; the oldest ``limit`` of them, or
        with ``newest`` the newest ``limit``."""
        params = {
            "instrument": instrument,
            "from": None if start is None else start.isoformat(),
            "limit": limit,
            "shadow": str(shadow).lower(),
            "newest": str(newest).lower(),
        }
        return list(self._request("GET", "/predictions/history", params)["rows"])

    def explain(self, prediction_id: str) -> dict[str, Any]:
        """GET /explain: per-feature contributions (percent) of a logged prediction."""
        return dict(self._request("GET", "/explain", {"prediction_id": prediction_id}))

    def news(self, limit: int = 50) -> list[dict[str, Any]]:
        """GET /news/recent: the newest scored articles."""
        return list(self._request("GET", "/news/recent", {"limit": limit})["items"])

    def bars(self, instrument: str, limit: int = 500, end: datetime | None = None) -> dict[str, Any]:
        """GET /bars: the newest ``limit`` stored bars of ``instrument`` starting before ``end`` (default
        all), oldest first."""
        params = {"instrument": instrument, "limit": limit, "to": None if end is None else end.isoformat()}
        return dict(self._request("GET", "/bars", params))

    def monitoring(self) -> dict[str, Any]:
        """GET /monitoring/latest: the latest monitoring summary (issue 13)."""
        return dict(self._request("GET", "/monitoring/latest"))

    def alerts(self, status: str | None = "open") -> list[dict[str, Any]]:
        """GET /alerts: alerts, newest first (issue 13)."""
        document = self._request("GET", "/alerts", {"status": status})
        return list(document["alerts"] if isinstance(document, dict) else document)

    def model_history(self, limit: int = 100) -> dict[str, Any]:
        """GET /models/history: registry transitions (with gate results) and slot changes, newest first."""
        return dict(self._request("GET", "/models/history", {"limit": limit}))

    def version_metrics(self, version: int) -> dict[str, Any]:
        """GET /models/{version}/metrics: ``metrics[split][predictor][metric]`` logged with its training."""
        return dict(self._request("GET", f"/models/{version}/metrics"))

    # ----- actions
    def predict(self, instrument: str, explain: bool = True) -> dict[str, Any]:
        """POST /predict for the newest closed bar (logged like any prediction)."""
        return dict(self._request("POST", "/predict", body={"instrument": instrument, "explain": explain}))

    def admin(
        self, path: str, body: dict[str, Any], admin_key: str, actor: str | None = None
    ) -> dict[str, Any]:
        """POST /admin/{path} (``deploy``, ``rollback``, ``weights``, ``shadow``) with the admin key (sent in
        the X-Admin-Key header of this one request, never kept); ``actor`` is audited on the slot change
        (the server's default when None). Returns the slot state after."""
        register_secret(admin_key)  # scrubbed from any message, should one ever echo it
        headers = {"X-Admin-Key": admin_key} | ({} if actor is None else {"X-Actor": actor})
        return dict(self._request("POST", f"/admin/{path}", body=body, headers=headers))

    def alert_action(
        self, alert_id: int, action: Literal["ack", "resolve"], admin_key: str, actor: str = "dashboard"
    ) -> dict[str, Any]:
        """POST /alerts/{id}/ack or /alerts/{id}/resolve with the admin key (sent in the X-Admin-Key header
        of this one request, never kept); ``actor`` is recorded on the alert. Returns the alert after."""
        register_secret(admin_key)  # scrubbed from any message, should one ever echo it
        headers = {"X-Admin-Key": admin_key, "X-Actor": actor}
        return dict(self._request("POST", f"/alerts/{alert_id}/{action}", headers=headers))
