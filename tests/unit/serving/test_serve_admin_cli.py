"""`spxcast serve deploy|rollback|weights|shadow`: thin clients of the admin routes of a real API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from monitoring_support import serving_api
from serving_factories import ServedHome, app_settings, build_home
from spxcast.cli.main import app
from spxcast.serving import create_app

KEY = "cli-admin-key-7d41b9"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> ServedHome:
    return build_home(tmp_path_factory.mktemp("served-cli"), ("lightgbm", "ar"))


def test_serve_verbs_change_the_slots_through_the_api_and_never_show_the_key(
    home: ServedHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    lightgbm, ar = home.versions["lightgbm"], home.versions["ar"]

    with serving_api(create_app(app_settings(home, tmp_path, serving={"admin_key": KEY}))) as url:

        def serve(*args: str, key: str | None = KEY, code: int = 0) -> str:
            if key is None:
                monkeypatch.delenv("SPXCAST_SERVING__ADMIN_KEY", raising=False)
            else:
                monkeypatch.setenv("SPXCAST_SERVING__ADMIN_KEY", key)
            result = runner.invoke(app, ["--home", str(home.settings.home), "serve", *args, "--url", url])
            assert (result.exit_code == 0) == (code == 0), result.output
            assert KEY not in result.output and "wrong-key-0c2e" not in result.output
            return result.output

        def state(output: str) -> dict[str, Any]:
            document: dict[str, Any] = json.loads(output)
            return document

        missing = serve("deploy", str(lightgbm), "--reason", "no key", key=None, code=1)
        assert "SPXCAST_SERVING__ADMIN_KEY" in missing
        refused = serve("deploy", str(lightgbm), "--reason", "wrong key", key="wrong-key-0c2e", code=1)
        assert "403" in refused

        live = state(serve("deploy", str(lightgbm), "--reason", "first champion"))
        assert live["versions"][live["live"]] == lightgbm
        idle = next(slot for slot in live["versions"] if slot != live["live"])

        loaded = state(serve("deploy", str(ar), "--no-swap", "--reason", "challenger"))
        assert loaded["live"] == live["live"] and loaded["versions"][idle] == ar

        split = state(serve("weights", "--blue", "0.8", "--green", "0.2", "--reason", "a/b"))
        assert split["weights"] == pytest.approx({"blue": 0.8, "green": 0.2})

        shadowed = state(serve("shadow", "on", "--reason", "watch the challenger"))
        assert shadowed["shadow"] is True

        swapped = state(serve("deploy", str(ar), "--reason", "promote the challenger"))
        assert swapped["versions"][swapped["live"]] == ar
        back = state(serve("rollback", "--reason", "challenger broke"))
        assert back["versions"][back["live"]] == lightgbm
