"""The pipeline finds a planted signal: on the synthetic market with its planted drift, the selected model's
out-of-time RMSE is within 2 % of the oracle RMSE the generator records (the best achievable forecast)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from spxcast.config import load_settings
from spxcast.lake import Lake
from spxcast.pipeline.runner import run_dag
from spxcast.pipeline.spec import DAG, get_dag


def _rmse(errors: pl.Series) -> float:
    return float(np.sqrt(np.mean(np.square(errors.to_numpy()))))


@pytest.mark.slow
def test_selected_model_is_within_two_percent_of_the_oracle(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        **{
            "market.synthetic.days": 150,
            "market.synthetic.planted_signal": True,
            "training.trials_coarse": 4,
            "training.trials_fine": 4,
            "training.oot2_rows": 5000,
            "pipeline.workers": 2,
        },
    )
    to_selection = DAG("to-selection", tuple(t for t in get_dag("full").tasks if t.name != "register_model"))
    summary = run_dag(settings, to_selection)
    assert summary.status == "succeeded", summary.errors

    run_dir = settings.artifacts_dir() / "runs" / summary.run_id
    selection = json.loads((run_dir / "selection.json").read_text())
    selected = selection["selected"]
    assert selected is not None, selection["reasons"]

    predictions = pl.read_parquet(run_dir / "candidates" / selected / "predictions.parquet")
    oracle = (
        Lake.from_settings(settings)
        .read("bronze.synthetic_oracle")
        .filter(pl.col("horizon_minutes") == settings.horizon_minutes)
        .select("ts", "oracle_ret_pct")
    )
    oot = predictions.filter(pl.col("split") == "oot").join(oracle, on="ts", how="inner")
    assert oot.height == predictions.filter(pl.col("split") == "oot").height > 10_000

    model_rmse = _rmse(oot["actual"] - oot[selected])
    oracle_rmse = _rmse(oot["actual"] - oot["oracle_ret_pct"])
    zero_rmse = _rmse(oot["actual"])
    # The test has teeth: predicting zero is clearly worse than the oracle on these rows.
    assert zero_rmse > 1.02 * oracle_rmse, (zero_rmse, oracle_rmse)
    assert model_rmse <= 1.02 * oracle_rmse, (selected, model_rmse, oracle_rmse, zero_rmse)
