"""Schema fuzzing (schemathesis): requests generated from the OpenAPI spec, valid and invalid, against the
app with a model deployed: no response is a server error, and every error body is JSON without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from serving_factories import ServedHome, app_settings, build_home

KEY = "fuzz-key"
EXAMPLES = 30


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> ServedHome:
    return build_home(tmp_path_factory.mktemp("served"), ("lightgbm",))


def test_no_server_errors_on_generated_requests(home: ServedHome, tmp_path: Path) -> None:
    import schemathesis
    from fastapi.testclient import TestClient

    from spxcast.serving import create_app

    app = create_app(app_settings(home, tmp_path, serving={"admin_key": KEY}))
    with TestClient(app) as api:  # runs the lifespan: the service is started for schemathesis' calls too
        deployed = api.post(
            "/admin/deploy",
            json={"version": home.versions["lightgbm"], "reason": "fuzz"},
            headers={"X-Admin-Key": KEY},
        )
        assert deployed.status_code == 200
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        failures: list[str] = []
        operations = [result.ok() for result in schema.get_all_operations()]
        # 12 serving routes + GET /bars (issue 14) + GET /monitoring/latest, /monitoring/report, /alerts
        # + the dashboard's POST /alerts/{id}/ack|resolve, GET /models/history, /models/{version}/metrics
        assert len(operations) == 20
        for operation in operations:

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
            )
            def exercise(case: schemathesis.Case) -> None:
                response = case.call()
                if response.status_code >= 500 or "Traceback" in response.text:
                    failures.append(
                        f"{case.method} {case.path}: {response.status_code} {response.text[:200]}"
                    )

            exercise()
        assert failures == []
