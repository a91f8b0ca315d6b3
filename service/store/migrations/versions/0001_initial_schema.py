"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feedback',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=256), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('text_hash', sa.String(length=40), nullable=False),
    sa.Column('content_hash', sa.String(length=40), nullable=False),
    sa.Column('minhash', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('brand', sa.String(length=128), nullable=False),
    sa.Column('product', sa.String(length=128), nullable=True),
    sa.Column('region', sa.String(length=128), nullable=True),
    sa.Column('rating', sa.Float(), nullable=True),
    sa.Column('rating_scale', sa.Float(), nullable=True),
    sa.Column('author_hash', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('duplicate_of', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('review','social','complaint','support','survey','other')", name=op.f('ck_feedback_channel')),
    sa.ForeignKeyConstraint(['duplicate_of'], ['feedback.id'], name=op.f('fk_feedback_duplicate_of_feedback'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback')),
    sa.UniqueConstraint('source', 'external_id', name='uq_feedback_source_external_id')
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_author_hash'), ['author_hash'], unique=False)
        batch_op.create_index('ix_feedback_brand_created_at', ['brand', 'created_at'], unique=False)
        batch_op.create_index('ix_feedback_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_duplicate_of'), ['duplicate_of'], unique=False)
        batch_op.create_index('ix_feedback_region_created_at', ['region', 'created_at'], unique=False)
        batch_op.create_index('ix_feedback_text_hash', ['text_hash'], unique=False)

    op.create_table('feedback_attribute',
    sa.Column('feedback_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], name=op.f('fk_feedback_attribute_feedback_id_feedback'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('feedback_id', 'name', name=op.f('pk_feedback_attribute'))
    )
    with op.batch_alter_table('feedback_attribute', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_attribute_name_value', ['name', 'value'], unique=False)

    op.create_table('feedback_band',
    sa.Column('band', sa.BigInteger(), nullable=False),
    sa.Column('feedback_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], name=op.f('fk_feedback_band_feedback_id_feedback'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('band', 'feedback_id', name=op.f('pk_feedback_band'))
    )
    with op.batch_alter_table('feedback_band', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_band_feedback_id'), ['feedback_id'], unique=False)

    op.create_table('score',
    sa.Column('feedback_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sentiment', sa.String(length=8), nullable=False),
    sa.Column('sentiment_score', sa.Float(), nullable=False),
    sa.Column('p_negative', sa.Float(), nullable=False),
    sa.Column('p_neutral', sa.Float(), nullable=False),
    sa.Column('p_positive', sa.Float(), nullable=False),
    sa.Column('model_version', sa.String(length=128), nullable=False),
    sa.Column('embedding', sa.LargeBinary(), nullable=False),
    sa.Column('scored_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("sentiment IN ('negative','neutral','positive')", name=op.f('ck_score_sentiment')),
    sa.CheckConstraint('sentiment_score BETWEEN -1 AND 1', name=op.f('ck_score_sentiment_score')),
    sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], name=op.f('fk_score_feedback_id_feedback'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('feedback_id', name=op.f('pk_score'))
    )
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_score_model_version'), ['model_version'], unique=False)
        batch_op.create_index(batch_op.f('ix_score_sentiment'), ['sentiment'], unique=False)

    op.create_table('aspect_score',
    sa.Column('feedback_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('aspect', sa.String(length=64), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('sentiment', sa.String(length=8), nullable=False),
    sa.Column('sentiment_score', sa.Float(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['feedback_id'], ['score.feedback_id'], name=op.f('fk_aspect_score_feedback_id_score'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('feedback_id', 'aspect', name=op.f('pk_aspect_score'))
    )
    with op.batch_alter_table('aspect_score', schema=None) as batch_op:
        batch_op.create_index('ix_aspect_score_aspect_sentiment', ['aspect', 'sentiment'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('aspect_score', schema=None) as batch_op:
        batch_op.drop_index('ix_aspect_score_aspect_sentiment')

    op.drop_table('aspect_score')
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_score_sentiment'))
        batch_op.drop_index(batch_op.f('ix_score_model_version'))

    op.drop_table('score')
    with op.batch_alter_table('feedback_band', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_band_feedback_id'))

    op.drop_table('feedback_band')
    with op.batch_alter_table('feedback_attribute', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_attribute_name_value')

    op.drop_table('feedback_attribute')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_text_hash')
        batch_op.drop_index('ix_feedback_region_created_at')
        batch_op.drop_index(batch_op.f('ix_feedback_duplicate_of'))
        batch_op.drop_index('ix_feedback_created_at')
        batch_op.drop_index('ix_feedback_brand_created_at')
        batch_op.drop_index(batch_op.f('ix_feedback_author_hash'))

    op.drop_table('feedback')
