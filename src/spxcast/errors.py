"""The one exception hierarchy of spxcast.

Every error a user can cause derives from :class:`SpxcastError`; entry points (CLI, API, runner) map it to
a one-line message and an exit code. Messages name the object, what was expected and what was received.
Third-party exceptions are wrapped at I/O boundaries with ``raise ... from exc``.

Secrets never reach a message: the values in use (settings' secrets, credentials a client sends) are
registered with :func:`register_secret`, and :func:`redact` — applied by every :class:`SpxcastError`, the
CLI's error path and log output, and the runner's recorded task errors — replaces them (and any password
in a URL) with ``****``. This module is the one scrubbing place.
"""

from __future__ import annotations

import re

_SECRETS: set[str] = set()
_MIN_SECRET_LENGTH = 8  # shorter values would blank out ordinary words; real credentials are longer
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<password>[^@\s]+)@")
MASK = "****"


def register_secret(value: str | None) -> None:
    """Remember ``value`` (a token, password, credential header) so that :func:`redact` removes it."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret and every URL password replaced by ``****``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


class SpxcastError(Exception):
    """Base class of every error spxcast raises on purpose; its message never shows a secret."""

    exit_code: int = 1

    def __str__(self) -> str:
        return redact(super().__str__())


class ConfigError(SpxcastError):
    """A setting is missing, malformed or inconsistent."""

    exit_code = 2


class LakeError(SpxcastError):
    """A lake table could not be read or written."""


class SchemaError(LakeError):
    """A frame does not match the declared schema of the table it is written to."""


class DataQualityError(SpxcastError):
    """Data exists but is unusable for the step that asked for it (empty, too many gaps, stale)."""


class SourceError(SpxcastError):
    """An external data source failed or answered with something we cannot use."""


class PipelineError(SpxcastError):
    """A DAG is malformed or a pipeline run failed."""


class ModelError(SpxcastError):
    """A model could not be trained, saved, loaded or applied."""


class RegistryError(SpxcastError):
    """The model registry refused an operation or is unreachable."""
