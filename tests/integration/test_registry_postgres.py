"""MLflow with PostgreSQL (psycopg 3) as backend store, and the audit trail in a PostgreSQL app database."""

from __future__ import annotations

import pytest

from registry_factories import GOOD, write_gold, write_run
from services import fresh_postgres_database
from spxcast.config import Settings
from spxcast.registry import CHAMPION, ModelRegistry, Stage, register_run


@pytest.mark.integration
def test_registry_lifecycle_on_postgresql(settings: Settings, postgres_url: str) -> None:
    with fresh_postgres_database() as mlflow_url:
        assert mlflow_url.startswith("postgresql+psycopg://")
        on_postgres = settings.model_copy(
            update={
                "db": settings.db.model_copy(update={"url": postgres_url}),
                "registry": settings.registry.model_copy(update={"tracking_uri": mlflow_url}),
            }
        )
        write_gold(on_postgres)
        versions = []
        for coef in ((0.3, 0.0), GOOD):
            run_id, run_dir = write_run(on_postgres, {"xgboost": (coef, True)}, "xgboost")
            result = register_run(on_postgres, run_dir, run_id, actor="ci")
            assert result.created
            versions.append(result.version)
            ModelRegistry(on_postgres).promote(actor="ci")
        registry = ModelRegistry(on_postgres)
        assert registry.client.get_run(registry.get(versions[1]).run_id).data.metrics[
            "oot.rmse"
        ] == pytest.approx(0.1)
        assert registry.rollback("drill", actor="ci") == (versions[0], versions[1])
        assert registry.by_alias(CHAMPION).version == versions[0]  # type: ignore[union-attr]
        assert registry.get(versions[1]).stage == Stage.ARCHIVED
        actions = [(s.version, s.action) for s in registry.history()]
        assert actions == [
            (versions[0], "register"),
            (versions[0], "promote"),
            (versions[1], "register"),
            (versions[0], "demote"),
            (versions[1], "promote"),
            (versions[1], "rollback"),
            (versions[0], "rollback"),
        ]
        assert registry.history()[0].at.tzinfo is not None
        assert (settings.home / "mlflow.db").exists() is False, "nothing may fall back to the SQLite default"
