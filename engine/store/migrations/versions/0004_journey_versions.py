"""journey versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('journey_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('journey_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('live_since', engine.store.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('journey_id', 'version', name='uq_journey_version')
    )


def downgrade() -> None:
    op.drop_table('journey_version')
