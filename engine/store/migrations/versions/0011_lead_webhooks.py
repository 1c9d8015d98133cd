"""webhook deliveries about a lead itself (lead.unsubscribed, consent.withdrawn): tied to the
lead, so its erasure takes their payloads too

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_delivery') as batch:
        batch.add_column(sa.Column('lead_id', sa.Integer(), nullable=True))
        batch.create_index('ix_webhook_delivery_lead_id', ['lead_id'], unique=False)
        batch.create_foreign_key('fk_webhook_delivery_lead_id_lead', 'lead', ['lead_id'],
                                 ['id'])


def downgrade() -> None:
    with op.batch_alter_table('webhook_delivery') as batch:
        batch.drop_constraint('fk_webhook_delivery_lead_id_lead', type_='foreignkey')
        batch.drop_index('ix_webhook_delivery_lead_id')
        batch.drop_column('lead_id')
