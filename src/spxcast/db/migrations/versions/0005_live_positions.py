"""Live loop: the position of each series (the newest bar predicted, logged and published).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_positions",
        sa.Column("instrument", sa.String(64), primary_key=True),
        sa.Column("granularity", sa.String(8), primary_key=True),
        sa.Column("bar_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bars", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("live_positions")
