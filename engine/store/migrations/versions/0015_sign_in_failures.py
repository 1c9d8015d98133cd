"""failed workbench sign-ins in the database, so that every API process counts the same

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.types import UtcDateTime

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sign_in_failure',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('ip', sa.String(length=45), nullable=False),
        sa.Column('at', UtcDateTime(), nullable=False),
    )
    op.create_index('ix_sign_in_failure_ip', 'sign_in_failure', ['ip'])
    op.create_index('ix_sign_in_failure_at', 'sign_in_failure', ['at'])


def downgrade() -> None:
    op.drop_index('ix_sign_in_failure_at', table_name='sign_in_failure')
    op.drop_index('ix_sign_in_failure_ip', table_name='sign_in_failure')
    op.drop_table('sign_in_failure')
