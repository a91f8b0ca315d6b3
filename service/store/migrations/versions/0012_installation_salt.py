"""a per-installation author salt; the tokens a long text's score left unread; tracked phrases' scope

``installation`` holds values of this installation: ``author_salt``, 32 random bytes made here.
Every stored ``author_hash`` is wrapped with it (``service/store/installation.py``: the stored
hash is ``sha256(salt ‖ 0x01 ‖ configured hash)``), so the same author still links to their
earlier items and can still be erased, while a shown hash no longer gives a short id away.
``score.truncated_tokens``: how many tokens past ``limits.max_item_tokens`` the model did not
read (None: none). ``tracked_phrase.regions``/``brands``: the data scope of the keys that track
a phrase (empty: everyone's); a scoped key lists only phrases of its scope. The downgrade drops both; wrapped hashes cannot be unwrapped (the store's
authors can then no longer be erased by id).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""
import hashlib
import secrets

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'installation',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_installation')),
    )
    salt = secrets.token_hex(32)
    op.bulk_insert(table, [{"name": "author_salt", "value": salt}])
    key = bytes.fromhex(salt)
    bind = op.get_bind()
    feedback = sa.table('feedback', sa.column('author_hash', sa.String))
    olds = [r[0] for r in bind.execute(sa.select(feedback.c.author_hash).where(
        feedback.c.author_hash.is_not(None)).distinct())]
    stmt = (sa.update(feedback).where(feedback.c.author_hash == sa.bindparam('old'))
            .values(author_hash=sa.bindparam('new')))
    for i in range(0, len(olds), 5000):
        bind.execute(stmt, [{"old": o, "new": hashlib.sha256(key + b"\x01" + o.encode("ascii")).hexdigest()}
                            for o in olds[i:i + 5000]])
    with op.batch_alter_table('score') as batch_op:
        batch_op.add_column(sa.Column('truncated_tokens', sa.Integer(), nullable=True))
    with op.batch_alter_table('tracked_phrase') as batch_op:
        batch_op.add_column(sa.Column('regions', sa.Text(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('brands', sa.Text(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('tracked_phrase') as batch_op:
        batch_op.drop_column('brands')
        batch_op.drop_column('regions')
    with op.batch_alter_table('score') as batch_op:
        batch_op.drop_column('truncated_tokens')
    op.drop_table('installation')
