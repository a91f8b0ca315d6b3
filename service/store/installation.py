"""What belongs to one installation of Radar and lives in its store: the author salt.

Author ids are stored only as ``sha256(salt ‖ 0x01 ‖ inner)``, where ``inner`` is the
configured hash (``Settings.author_hasher``: SHA-256 of ``RADAR_AUTHOR_SALT`` ‖ 0 ‖ id) and
``salt`` is 32 random bytes made by migration 0012 when the store is created or upgraded (an
older store's hashes are wrapped in the same step, so its links and erasure keep working). A
short customer id can no longer be recovered from a shown hash by trying ids, even where no
``RADAR_AUTHOR_SALT`` was ever set; the salt never leaves the store.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.tables import InstallationRow

AUTHOR_SALT = "author_salt"


def new_salt() -> str:
    return secrets.token_hex(32)


def wrap(salt: bytes, inner: str) -> str:
    """The stored hash of an author whose configured hash is ``inner``."""
    return hashlib.sha256(salt + b"\x01" + inner.encode("ascii")).hexdigest()


def author_salt(session: Session) -> bytes:
    """This store's author salt (made here if a store somehow lacks it; committed)."""
    value = session.scalar(select(InstallationRow.value).where(InstallationRow.name == AUTHOR_SALT))
    if value is None:
        value = new_salt()
        session.add(InstallationRow(name=AUTHOR_SALT, value=value))
        session.commit()
    return bytes.fromhex(value)


def author_hasher(inner: Callable[[str], str], salt: bytes) -> Callable[[str], str]:
    """Author id → the hash stored in ``feedback.author_hash``."""
    return lambda author: wrap(salt, inner(author))
