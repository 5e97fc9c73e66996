"""Order executions: each live/paper order's status, reason code and realized vs expected cost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_executions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("order_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("requested_qty", sa.Float(), nullable=False),
        sa.Column("filled_qty", sa.Float(), nullable=False),
        sa.Column("avg_fill_price", sa.Float(), nullable=True),
        sa.Column("fee_usd", sa.Float(), nullable=False),
        sa.Column("reference_price", sa.Float(), nullable=False),
        sa.Column("expected_cost_bps", sa.Float(), nullable=False),
        sa.Column("realized_cost_bps", sa.Float(), nullable=True),
        sa.Column("realized_fee_bps", sa.Float(), nullable=True),
        sa.Column("realized_price_impact_bps", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_order_executions_side")),
        sa.CheckConstraint(
            "status IN ('pending', 'filled', 'canceled', 'rejected', 'expired')",
            name=op.f("ck_order_executions_status"),
        ),
        sa.CheckConstraint(
            "filled_qty >= 0", name=op.f("ck_order_executions_filled_qty_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["decision_events.event_id"],
            name=op.f("fk_order_executions_event_id_decision_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_executions")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_order_executions_client_order_id")),
    )
    op.create_index(
        "ix_order_executions_symbol_updated_at",
        "order_executions",
        ["symbol", "updated_at"],
        unique=False,
    )
    op.create_index("ix_order_executions_event_id", "order_executions", ["event_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_order_executions_event_id", table_name="order_executions")
    op.drop_index("ix_order_executions_symbol_updated_at", table_name="order_executions")
    op.drop_table("order_executions")
