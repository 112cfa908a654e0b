"""Domain errors of the prediction service. ``spxcast.serving.app`` maps each to one HTTP status, in one
place; nothing here knows about HTTP."""

from __future__ import annotations

from spxcast.errors import SpxcastError


class ServingError(SpxcastError):
    """Base of the errors a request to the prediction service can meet."""


class NotFound(ServingError):
    """An instrument, bar or prediction that does not exist (unknown instrument, bar not in gold)."""


class InvalidInput(ServingError):
    """A request that is well-formed JSON but cannot be served as asked (wrong feature names, ts with
    features); the message says what was wrong."""


class NoModel(ServingError):
    """No model can answer (nothing deployed, the slot asked for is empty); the message gives the reason."""


class DeployRefused(ServingError):
    """A deploy, weight change, shadow change or rollback that was refused; the live slot is untouched."""
