"""Ids of series and layouts in the PostgreSQL warm tier, created on first sight.

Both are immutable once committed (a series id names one key of one source forever; a layout
is the ordered list of series ids of a frame), which is what lets writers cache them.
Statements here run while the source's row is locked (by a write or an import), so no other
transaction creates ids of that source meanwhile: one statement both creates and finds them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

# $1 source ids, $2 keys: the id of every (source, key), created if missing
SERIES_SQL = """
    WITH wanted AS (SELECT * FROM unnest($1::int4[], $2::text[]) AS w(source_id, key)),
    added AS (
        INSERT INTO series (source_id, key) SELECT source_id, key FROM wanted
        ON CONFLICT (source_id, key) DO NOTHING
        RETURNING id, source_id, key)
    SELECT id, source_id, key FROM added
    UNION ALL
    SELECT s.id, s.source_id, s.key FROM series s JOIN wanted w USING (source_id, key)"""
# $1 source id, $2 digest, $3 series ids: the layout's id, created if missing
LAYOUT_SQL = """
    WITH added AS (
        INSERT INTO layouts (source_id, digest, ids) VALUES ($1, $2, $3)
        ON CONFLICT (digest) DO NOTHING RETURNING id)
    SELECT id FROM added UNION ALL SELECT id FROM layouts WHERE digest = $2"""


def digest(ids: Sequence[int]) -> bytes:
    """The identity of a layout (its series ids in order)."""
    return hashlib.blake2b(np.asarray(ids, dtype="<i4").tobytes(), digest_size=16).digest()
