"""The loop on a real registry and a real serving API on loopback: the champion's reference from the
registry, a challenger deployed to the idle slot in shadow through the API's admin routes, and promoted
(registry + swap through the API) only when it beats the champion on the same live rows. The training DAG
itself runs in tests/e2e/test_retrain_loop.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import SecretStr
from sqlalchemy import text
from test_monitoring_service import NOW, write_log

from monitoring_support import serving_api
from serving_factories import app_settings, build_home
from spxcast.db.engine import connect
from spxcast.monitoring import service
from spxcast.registry.lifecycle import ModelRegistry
from spxcast.serving import create_app

KEY = "loop-admin-key-5b1e"


def test_champion_reference_shadow_deploy_and_promotion(tmp_path: Path) -> None:
    home = build_home(tmp_path / "served", ("lightgbm", "ar"))
    settings = app_settings(home, tmp_path)
    settings = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"admin_key": SecretStr(KEY)})}
    )
    registry = ModelRegistry(settings)
    champion_version, challenger_version = home.versions["lightgbm"], home.versions["ar"]
    registry.promote(champion_version, force=True, reason="test: the LightGBM model serves")

    champion = service.load_champion(settings)
    assert champion.version == champion_version and champion.reference.height > 100
    assert champion.test_rmse is not None and champion.test_rmse > 0
    assert "prediction" in champion.reference.columns

    with serving_api(create_app(settings)) as url:
        served = settings.model_copy(
            update={"monitoring": settings.monitoring.model_copy(update={"serving_url": url})}
        )
        shadow = service.deploy_to_serving(served, challenger_version, "test: shadow", swap=False)
        assert shadow["status"] == "deployed" and shadow["shadow"] is True
        assert shadow["versions"][shadow["live"]] == champion_version
        wrong = served.model_copy(
            update={"serving": served.serving.model_copy(update={"admin_key": SecretStr("not-the-key")})}
        )
        refused = service.deploy_to_serving(wrong, challenger_version, "test", swap=False)
        assert refused["status"] == "deploy failed" and "403" in refused["why"]
        assert "not-the-key" not in str(refused)

        engine = connect(settings.db_url())
        with engine.begin() as connection:  # the server's own rows are not part of this scenario
            connection.execute(text("DELETE FROM predictions"))
        write_log(  # the shadow beats the champion after the switch
            engine,
            np.random.default_rng(9),
            switch_at=500,
            n=3000,
            versions=(champion_version, challenger_version),
        )
        # The live comparison allows it, but the AR challenger fails the registry's offline gates: refused.
        refused = service.promote_challenger(served, now=NOW, actor="tests")
        assert not refused["decision"]["promote"] and "promoted" not in refused
        assert refused["paired"]["p_value"] < 0.05 and refused["paired"]["rows"] == 3000
        assert any("registry gates refused" in r for r in refused["decision"]["reasons"])
        assert registry.by_alias("champion").version == champion_version
        # A person overrides with a reason: registry promotion (audited as forced) and the slots swap.
        forced = service.promote_challenger(
            served, now=NOW, force=True, reason="on-call: live rows", actor="tests"
        )
        assert forced["decision"]["forced"] and forced["promoted"]
        assert registry.by_alias("champion").version == challenger_version
        assert forced["serving"]["status"] == "deployed"
        assert forced["serving"]["versions"][forced["serving"]["live"]] == challenger_version
    actions = [t.action for t in registry.history(challenger_version)]
    assert actions[-2:] == ["promote_refused", "promote"]
