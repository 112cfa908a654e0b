"""The prediction API: ``create_app(settings)`` and the service behind it."""

from spxcast.serving.app import create_app

__all__ = ["create_app"]
