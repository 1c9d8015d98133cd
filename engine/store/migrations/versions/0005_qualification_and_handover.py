"""qualification and handover: sales stage, SLA breach, routing, endpoint state

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_endpoint_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('disabled_at', engine.store.types.UtcDateTime(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint_id')
    )
    with op.batch_alter_table('lead') as batch:
        batch.add_column(sa.Column('sales_stage', sqlmodel.sql.sqltypes.AutoString(length=3),
                                   nullable=True))
        batch.add_column(sa.Column('mql_at', engine.store.types.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column('qualify_at', engine.store.types.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column('recycled_at', engine.store.types.UtcDateTime(),
                                   nullable=True))
        batch.create_index('ix_lead_sales_stage', ['sales_stage'], unique=False)
        batch.create_index('ix_lead_qualify_at', ['qualify_at'], unique=False)
    with op.batch_alter_table('handover') as batch:
        batch.add_column(sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=20),
                                   nullable=True))
        batch.add_column(sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=10),
                                   nullable=True))
        batch.add_column(sa.Column('routing_rule', sqlmodel.sql.sqltypes.AutoString(length=80),
                                   nullable=True))
        batch.add_column(sa.Column('escalated_at', engine.store.types.UtcDateTime(),
                                   nullable=True))
        batch.add_column(sa.Column('breached', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('handover') as batch:
        for column in ('breached', 'escalated_at', 'routing_rule', 'channel', 'outcome'):
            batch.drop_column(column)
    with op.batch_alter_table('lead') as batch:
        batch.drop_index('ix_lead_qualify_at')
        batch.drop_index('ix_lead_sales_stage')
        batch.drop_column('qualify_at')
        batch.drop_column('recycled_at')
        batch.drop_column('mql_at')
        batch.drop_column('sales_stage')
    op.drop_table('webhook_endpoint_state')
