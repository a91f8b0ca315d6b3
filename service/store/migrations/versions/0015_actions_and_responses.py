"""actions, the alerts they answer, and answers to items

``action`` records what a team changed, where and when (its effect is estimated on demand by
``service/analytics/effects.py``); ``action_alert`` links actions to the alerts they answer;
``feedback_response`` records when an item was answered, by whom and how.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'action',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('brand', sa.String(length=128), nullable=False),
        sa.Column('product', sa.String(length=256), nullable=True),
        sa.Column('region', sa.String(length=128), nullable=True),
        sa.Column('segment', sa.Text(), nullable=False),
        sa.Column('aspect', sa.String(length=64), nullable=True),
        sa.Column('metric', sa.String(length=16), nullable=False),
        sa.Column('min_effect', sa.Float(), nullable=True),
        sa.Column('controls', sa.Text(), nullable=True),
        sa.Column('started_at', When, nullable=False),
        sa.Column('ended_at', When, nullable=True),
        sa.Column('owner', sa.String(length=128), nullable=True),
        sa.Column('due_at', When, nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('completed_at', When, nullable=True),
        sa.Column('created_by', sa.String(length=128), nullable=False),
        sa.Column('created_at', When, nullable=False),
        sa.Column('updated_at', When, nullable=False),
        sa.CheckConstraint("kind IN ('product','packaging','price','service','delivery','communication','other')",
                           name=op.f('ck_action_kind')),
        sa.CheckConstraint("status IN ('planned','active','completed','cancelled')", name=op.f('ck_action_status')),
        sa.CheckConstraint("metric IN ('negative_share','net_sentiment','volume','rating')",
                           name=op.f('ck_action_metric')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_action')),
    )
    op.create_index('ix_action_brand_started_at', 'action', ['brand', 'started_at'], unique=False)
    op.create_index(op.f('ix_action_region'), 'action', ['region'], unique=False)
    op.create_index(op.f('ix_action_status'), 'action', ['status'], unique=False)
    op.create_table(
        'action_alert',
        sa.Column('action_id', BigId, nullable=False),
        sa.Column('alert_id', BigId, nullable=False),
        sa.Column('linked_at', When, nullable=False),
        sa.ForeignKeyConstraint(['action_id'], ['action.id'], name=op.f('fk_action_alert_action_id_action'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], name=op.f('fk_action_alert_alert_id_alert'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('action_id', 'alert_id', name=op.f('pk_action_alert')),
    )
    op.create_index(op.f('ix_action_alert_alert_id'), 'action_alert', ['alert_id'], unique=False)
    op.create_table(
        'feedback_response',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('feedback_id', BigId, nullable=False),
        sa.Column('responded_at', When, nullable=False),
        sa.Column('responder', sa.String(length=128), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('recorded_by', sa.String(length=128), nullable=False),
        sa.Column('created_at', When, nullable=False),
        sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], name=op.f('fk_feedback_response_feedback_id_feedback'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_response')),
    )
    op.create_index('ix_feedback_response_feedback_id_responded_at', 'feedback_response',
                    ['feedback_id', 'responded_at'], unique=False)


def downgrade() -> None:
    op.drop_table('feedback_response')
    op.drop_table('action_alert')
    op.drop_table('action')
