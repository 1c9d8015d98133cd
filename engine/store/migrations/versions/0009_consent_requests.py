"""consent requests: the request id on consent records (a link confirms only its own request,
once) and the details a public sign-up gave for a confirmed lead, waiting for its confirmation

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consent_record') as batch:
        batch.add_column(sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=32),
                                   nullable=True))
        batch.create_index('ix_consent_record_request_id', ['request_id'], unique=False)
    with op.batch_alter_table('lead') as batch:
        batch.add_column(sa.Column('pending_profile', sa.JSON(), nullable=True))
    # The open request of every pending lead keeps working: its `requested` records since
    # the link was made belong to it. Links of confirmed and unsubscribed leads confirm
    # nothing any more (that was the hole this revision closes).
    op.execute(sa.text(
        "UPDATE consent_record SET request_id = (SELECT lead.doi_nonce FROM lead "
        "WHERE lead.id = consent_record.lead_id) "
        "WHERE action = 'requested' AND EXISTS (SELECT 1 FROM lead "
        "WHERE lead.id = consent_record.lead_id AND lead.status = 'pending' "
        "AND lead.doi_nonce IS NOT NULL AND lead.doi_requested_at IS NOT NULL "
        "AND consent_record.occurred_at >= lead.doi_requested_at)"))
    op.execute(sa.text("UPDATE lead SET doi_nonce = NULL WHERE status <> 'pending'"))


def downgrade() -> None:
    with op.batch_alter_table('lead') as batch:
        batch.drop_column('pending_profile')
    with op.batch_alter_table('consent_record') as batch:
        batch.drop_index('ix_consent_record_request_id')
        batch.drop_column('request_id')
