"""The one exception hierarchy of spxcast.

Every error a user can cause derives from :class:`SpxcastError`; entry points (CLI, API, runner) map it to
a one-line message and an exit code. Messages name the object, what was expected and what was received.
Third-party exceptions are wrapped at I/O boundaries with ``raise ... from exc``.
"""


class SpxcastError(Exception):
    """Base class of every error spxcast raises on purpose."""

    exit_code: int = 1


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
