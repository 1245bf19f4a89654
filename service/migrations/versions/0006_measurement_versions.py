"""Measurement versions: one counter per site, raised in the transaction that writes any of
its measurements, so that a reader learns in one indexed read whether a site's data changed
(the dashboard keeps each site's month-to-date until it does).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "measurement_versions",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    # sites measured before this revision start at version 1
    op.execute("INSERT INTO measurement_versions (site_id, version, changed_at) "
               "SELECT site_id, 1, MAX(received_at) FROM measurements GROUP BY site_id")


def downgrade() -> None:
    op.drop_table("measurement_versions")
