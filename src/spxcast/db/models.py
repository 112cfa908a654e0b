"""Tables of the app database. Timestamps are stored as UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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


class AlertRecord(Base):
    """One monitoring alert: a breached (check, subject) from its opening to its resolution.

    ``status``: open → acknowledged (a person saw it) → resolved (condition cleared or a person closed it).
    ``key`` = ``check:subject`` dedups: while an alert of a key is open or acknowledged, later breaches only
    bump ``last_seen``/``count``. ``notified`` is the JSON of the channel results when it was opened.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_key_status", "key", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(256))
    check: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(256))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=1)
    run_id: Mapped[str] = mapped_column(String(128), doc="monitoring run that opened it")
    notified: Mapped[str | None] = mapped_column(Text, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PredictionRecord(Base):
    """One prediction of the API (served or shadow), keyed by its id; ``realised_pct`` is attached once the
    horizon has passed. Returns and bounds are in percent; ``bar_ts`` is the bar start (UTC) the forecast
    is made at the close of, ``feature_as_of`` when its inputs were known."""

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_instrument_bar", "instrument", "bar_ts"),)

    prediction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    instrument: Mapped[str] = mapped_column(String(64))
    granularity: Mapped[str] = mapped_column(String(8))
    horizon_minutes: Mapped[int] = mapped_column(Integer)
    bar_ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    feature_as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    model_name: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[int] = mapped_column(Integer)
    slot: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16), doc="served or shadow")
    predicted_pct: Mapped[float] = mapped_column(Float)
    lower_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    upper_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    price: Mapped[float | None] = mapped_column(Float, nullable=True, doc="close of bar_ts")
    features: Mapped[str] = mapped_column(Text, doc="JSON {name: value} the model read")
    realised_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    realised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SlotChange(Base):
    """One audited change of the serving slots (deploy, swap, weights, shadow, rollback): who, when, why,
    and the whole slot state after it (JSON). The newest row is the state a restarted server resumes."""

    __tablename__ = "serving_slot_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, doc="JSON of the slot state after the change")


class LivePosition(Base):
    """Where the live loop of one series stands: the newest bar it predicted, logged and published."""

    __tablename__ = "live_positions"

    instrument: Mapped[str] = mapped_column(String(64), primary_key=True)
    granularity: Mapped[str] = mapped_column(String(8), primary_key=True)
    bar_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), doc="start of the newest processed bar")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    bars: Mapped[int] = mapped_column(Integer, default=0, doc="bars processed since the position was created")
