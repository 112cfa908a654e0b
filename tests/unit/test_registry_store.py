"""Names of registered models and clear, secret-free errors when the MLflow store is unusable."""

from __future__ import annotations

import socket

import pytest

from spxcast.config import Settings
from spxcast.errors import RegistryError
from spxcast.registry import registered_model_name
from spxcast.registry.store import mlflow_client


def test_one_registered_model_per_instrument_bar_size_and_horizon() -> None:
    assert registered_model_name("SPX500_USD", "M1", 30) == "spxcast-SPX500_USD-30m"
    assert registered_model_name("SPX500_USD", "M5", 60) == "spxcast-SPX500_USD-M5-60m"
    assert registered_model_name("SPX", "D", 1440, 1) == "spxcast-SPX-D-1b", "labels by bar, not by time"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_tracking_server_fails_fast_without_leaking_the_password(settings: Settings) -> None:
    uri = f"http://alice:s3cret@127.0.0.1:{_closed_port()}"
    section = settings.registry.model_copy(update={"tracking_uri": uri, "http_max_retries": 0})
    with pytest.raises(RegistryError, match=r"MLflow store at http://alice:\*\*\*\*@127\.0\.0\.1") as error:
        mlflow_client(settings.model_copy(update={"registry": section}))
    assert "s3cret" not in str(error.value)
