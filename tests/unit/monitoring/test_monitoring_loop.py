"""The loop on a real registry and serving slots: the champion's reference from the registry, a challenger
deployed to the idle slot in shadow through serving's service layer, and promoted (registry + swap) only
when it beats the champion on the same live rows. The training DAG itself is not run here (the automatic
retrain calls it; tests/unit/monitoring/test_monitoring_service.py checks that it is called once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_monitoring_service import NOW, write_log

from serving_factories import app_settings, build_home
from spxcast.db.engine import connect
from spxcast.monitoring import service
from spxcast.registry.lifecycle import ModelRegistry


def test_champion_reference_shadow_deploy_and_promotion(tmp_path: Path) -> None:
    home = build_home(tmp_path / "served", ("lightgbm", "ar"))
    settings = app_settings(home, tmp_path)
    registry = ModelRegistry(settings)
    champion_version, challenger_version = home.versions["lightgbm"], home.versions["ar"]
    registry.promote(champion_version, force=True, reason="test: the LightGBM model serves")

    champion = service.load_champion(settings)
    assert champion.version == champion_version and champion.reference.height > 100
    assert champion.test_rmse is not None and champion.test_rmse > 0
    assert "prediction" in champion.reference.columns

    shadow = service.deploy_to_serving(settings, challenger_version, "test: shadow", swap=False)
    assert shadow["shadow"] is True

    engine = connect(settings.db_url())
    write_log(engine, np.random.default_rng(9), switch_at=500, n=3000)  # the shadow beats the champion
    # The live comparison allows it, but the AR challenger fails the registry's offline gates: refused.
    refused = service.promote_challenger(settings, now=NOW, actor="tests")
    assert not refused["decision"]["promote"] and "promoted" not in refused
    assert refused["paired"]["p_value"] < 0.05
    assert any("registry gates refused" in r for r in refused["decision"]["reasons"])
    assert registry.by_alias("champion").version == champion_version
    # A person overrides with a reason: registry promotion (audited as forced) and the slots swap.
    forced = service.promote_challenger(
        settings, now=NOW, force=True, reason="on-call: live rows", actor="tests"
    )
    assert forced["decision"]["forced"] and forced["promoted"]
    assert registry.by_alias("champion").version == challenger_version
    assert forced["serving"]["live"] != shadow["live"]  # the slot holding the challenger is live now
