"""Serving: the prediction log and the audited slot changes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("prediction_id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("granularity", sa.String(8), nullable=False),
        sa.Column("horizon_minutes", sa.Integer, nullable=False),
        sa.Column("bar_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feature_as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("slot", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("predicted_pct", sa.Float, nullable=False),
        sa.Column("lower_pct", sa.Float, nullable=True),
        sa.Column("upper_pct", sa.Float, nullable=True),
        sa.Column("price", sa.Float, nullable=True),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("realised_pct", sa.Float, nullable=True),
        sa.Column("realised_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_predictions_instrument_bar", "predictions", ["instrument", "bar_ts"])
    op.create_table(
        "serving_slot_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("serving_slot_changes")
    op.drop_index("ix_predictions_instrument_bar", "predictions")
    op.drop_table("predictions")
