"""The app database: SQLAlchemy models and Alembic migrations (SQLite by default, PostgreSQL by URL)."""

from spxcast.db.engine import connect, upgrade
from spxcast.db.models import (
    AlertRecord,
    Base,
    ModelTransition,
    PipelineRun,
    PredictionRecord,
    SlotChange,
    TaskRun,
)

__all__ = [
    "AlertRecord",
    "Base",
    "ModelTransition",
    "PipelineRun",
    "PredictionRecord",
    "SlotChange",
    "TaskRun",
    "connect",
    "upgrade",
]
