"""Tables of the app database. Timestamps are stored as UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class PipelineRun(Base):
    """One execution of a DAG by the local runner (resumable: a resumed run keeps its id)."""

    __tablename__ = "pipeline_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dag: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    tasks: Mapped[list[TaskRun]] = relationship(back_populates="run", order_by="TaskRun.id")


class TaskRun(Base):
    """One attempt of one task within a pipeline run."""

    __tablename__ = "task_runs"
    __table_args__ = (UniqueConstraint("run_id", "task", "attempt", name="uq_task_attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(128))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    outputs: Mapped[str | None] = mapped_column(Text, nullable=True, doc="JSON of what the task returned")

    run: Mapped[PipelineRun] = relationship(back_populates="tasks")


class ModelTransition(Base):
    """One audited step in the lifecycle of a registered model version (who, when, from, to, why).

    ``from_state``/``to_state`` are lifecycle states (None, Staging, Production, Archived); ``action`` names
    the operation (register, promote, rollback, archive, approve, supersede); ``gates`` is the JSON of the
    promotion-gate results at that moment, ``forced`` marks an override of failing gates.
    """

    __tablename__ = "model_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(256), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    gates: Mapped[str | None] = mapped_column(Text, nullable=True, doc="JSON of the gate results")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LivePosition(Base):
    """Where the live loop of one series stands: the newest bar it predicted, logged and published."""

    __tablename__ = "live_positions"

    instrument: Mapped[str] = mapped_column(String(64), primary_key=True)
    granularity: Mapped[str] = mapped_column(String(8), primary_key=True)
    bar_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), doc="start of the newest processed bar")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    bars: Mapped[int] = mapped_column(Integer, default=0, doc="bars processed since the position was created")
