"""labels and team models

A team's labels (corrections, labeling queue, imports) on stored items, kept through
rescoring and re-ingest; and the team models trained on them, stored in the database with
their checksum and evaluation report (promotion and rollback are timestamps). Scores'
model_version grows to 200 characters (a team model's version extends the generic one's).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # a team model's version names it after the generic pipeline's: room for both
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.alter_column('model_version', existing_type=sa.String(length=128), type_=sa.String(length=200),
                              existing_nullable=False)
    op.create_table('label',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('feedback_id', BigId, nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('aspect', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('labeled_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("target IN ('sentiment','aspect','aspect_sentiment')", name=op.f('ck_label_target')),
    sa.CheckConstraint("value IN ('negative','neutral','positive','present','absent')", name=op.f('ck_label_value')),
    sa.CheckConstraint("source IN ('correction','queue','import','rating')", name=op.f('ck_label_source')),
    sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], name=op.f('fk_label_feedback_id_feedback'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_label')),
    sa.UniqueConstraint('feedback_id', 'target', 'aspect', name='uq_label_feedback_id')
    )
    with op.batch_alter_table('label', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_label_feedback_id'), ['feedback_id'], unique=False)
        batch_op.create_index('ix_label_target_aspect', ['target', 'aspect'], unique=False)
        batch_op.create_index(batch_op.f('ix_label_updated_at'), ['updated_at'], unique=False)
    op.create_table('team_model',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('base_pipeline', sa.String(length=64), nullable=False),
    sa.Column('base_encoder', sa.String(length=64), nullable=False),
    sa.Column('taxonomy', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('weights', sa.LargeBinary(), nullable=False),
    sa.Column('report', sa.Text(), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('demoted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_model')),
    sa.UniqueConstraint('name', name=op.f('uq_team_model_name'))
    )


def downgrade() -> None:
    op.drop_table('team_model')
    with op.batch_alter_table('label', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_label_updated_at'))
        batch_op.drop_index('ix_label_target_aspect')
        batch_op.drop_index(batch_op.f('ix_label_feedback_id'))
    op.drop_table('label')
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.alter_column('model_version', existing_type=sa.String(length=200), type_=sa.String(length=128),
                              existing_nullable=False)
