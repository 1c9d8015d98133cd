"""existing customers: the after-sales journey and stage an imported customer enters

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lead') as batch:
        batch.add_column(sa.Column('customer_journey',
                                   sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch.add_column(sa.Column('customer_stage', sqlmodel.sql.sqltypes.AutoString(length=3),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lead') as batch:
        batch.drop_column('customer_stage')
        batch.drop_column('customer_journey')
