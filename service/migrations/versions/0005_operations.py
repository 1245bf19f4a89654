"""Operations: site measurements (upserted by site and time, indexed for range reads),
control-step set-points, and the leases that run each site's step once across server
processes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FLOATS = ("grid_import_kw", "grid_export_kw", "pv_kw", "load_kw", "battery_kw", "soc_kwh",
          "import_counter_kwh", "export_counter_kwh")


def upgrade() -> None:
    op.create_table(
        "measurements",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("ts", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("interval_minutes", sa.Integer, nullable=False),
        *(sa.Column(name, sa.Float, nullable=True) for name in FLOATS),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_measurements_ts", "measurements", ["ts"])
    op.create_table(
        "setpoints",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_setpoints_site_start", "setpoints", ["site_id", "start"])
    op.create_table(
        "operate_leases",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_slot", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("operate_leases")
    op.drop_index("ix_setpoints_site_start", "setpoints")
    op.drop_table("setpoints")
    op.drop_index("ix_measurements_ts", "measurements")
    op.drop_table("measurements")
