"""daily rollups for the dashboard's grouped counts

``rollup_day`` and ``rollup_aspect_day`` hold counts per UTC day, brand, region and one more
dimension's value; ``rollup_dirty`` lists days a write has made stale
(``service/store/rollups.py``). The tables start empty: a store is answered from its items
until ``radar db rollups`` (or ``radar serve``, ``radar ingest``) builds them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _keys() -> list:
    return [sa.Column('id', BigId, autoincrement=True, nullable=False),
            sa.Column('day', sa.String(length=10), nullable=False),
            sa.Column('dim', sa.String(length=70), nullable=False),
            sa.Column('value', sa.String(length=256), nullable=True),
            sa.Column('brand', sa.String(length=128), nullable=True),
            sa.Column('region', sa.String(length=128), nullable=True)]


def upgrade() -> None:
    op.create_table(
        'rollup_day', *_keys(),
        sa.Column('items', sa.BigInteger(), nullable=False),
        sa.Column('scored', sa.BigInteger(), nullable=False),
        sa.Column('neg', sa.BigInteger(), nullable=False),
        sa.Column('neu', sa.BigInteger(), nullable=False),
        sa.Column('pos', sa.BigInteger(), nullable=False),
        sa.Column('score_sum', sa.Float(), nullable=False),
        sa.Column('score_sq', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollup_day')),
    )
    op.create_index('ix_rollup_day_dim_day', 'rollup_day', ['dim', 'day'], unique=False)
    op.create_table(
        'rollup_aspect_day', *_keys(),
        sa.Column('aspect', sa.String(length=64), nullable=False),
        sa.Column('mentions', sa.BigInteger(), nullable=False),
        sa.Column('neg', sa.BigInteger(), nullable=False),
        sa.Column('pos', sa.BigInteger(), nullable=False),
        sa.Column('score_sum', sa.Float(), nullable=False),
        sa.Column('rating_sum', sa.Float(), nullable=False),
        sa.Column('rated', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollup_aspect_day')),
    )
    op.create_index('ix_rollup_aspect_day_dim_day', 'rollup_aspect_day', ['dim', 'day'], unique=False)
    op.create_table(
        'rollup_dirty',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollup_dirty')),
    )
    op.create_index(op.f('ix_rollup_dirty_day'), 'rollup_dirty', ['day'], unique=False)


def downgrade() -> None:
    op.drop_table('rollup_dirty')
    op.drop_table('rollup_aspect_day')
    op.drop_table('rollup_day')
