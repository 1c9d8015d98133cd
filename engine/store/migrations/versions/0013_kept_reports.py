"""reports kept ahead (the funnel, by the maintenance run); an index for the workbench's
counts per step

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.types import UtcDateTime

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'kept_report',
        sa.Column('name', sa.String(length=40), primary_key=True),
        sa.Column('period_start', UtcDateTime(), nullable=False),
        sa.Column('period_end', UtcDateTime(), nullable=False),
        sa.Column('computed_at', UtcDateTime(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
    )
    op.create_index('ix_enrollment_place', 'enrollment',
                    ['journey_id', 'step_id', 'status', 'due_at'])


def downgrade() -> None:
    op.drop_index('ix_enrollment_place', table_name='enrollment')
    op.drop_table('kept_report')
