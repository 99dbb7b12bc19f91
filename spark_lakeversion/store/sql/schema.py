"""The tables of the SQL storage, and the statements the commit path runs most.

- ``lv_nodes``   content-addressed key-tree nodes (immutable, shared by every commit);
- ``lv_contents`` content-addressed table/namespace states (immutable, deduplicated);
- ``lv_commits`` commits: parents, tree root, metadata, generation number;
- ``lv_commit_keys`` keys each commit changed (for `log --table`);
- ``lv_refs``    branch/tag -> head; the only mutable rows, moved by compare-and-swap;
- ``lv_reflog``  every ref movement with its time (for `ref#timestamp`);
- ``lv_table_locations`` location -> table id (`location_index`);
- ``lv_meta``    schema version and one-time marks;
- ``lv_gc_state`` gc's epoch and cutoffs (`gc_state`);
- ``lv_audit``   who did what to which ref, and how it ended (`audit`);
- ``lv_ui_sessions`` the web UI's sessions, by the SHA-256 of their id (`sessions`).
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from spark_lakeversion.model import Key, RefType
from spark_lakeversion.store.sql import location_index

SCHEMA_VERSION = "1"

metadata = sa.MetaData()
nodes_table = sa.Table(
    "lv_nodes", metadata,
    sa.Column("hash", sa.String(40), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
contents_table = sa.Table(
    "lv_contents", metadata,
    sa.Column("hash", sa.String(40), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)
commits_table = sa.Table(
    "lv_commits", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("parents", sa.Text, nullable=False),
    sa.Column("root", sa.String(40), nullable=True),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
)
commit_keys_table = sa.Table(
    "lv_commit_keys", metadata,
    sa.Column("commit_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Index("lv_commit_keys_by_key", "key"),
)
refs_table = sa.Table(
    "lv_refs", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("type", sa.String(8), nullable=False),
    sa.Column("head", sa.String(40), nullable=False),
)
reflog_table = sa.Table(
    "lv_reflog", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("head", sa.String(40), nullable=True),  # NULL: the ref was deleted
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Index("lv_reflog_by_name", "name", "ts_us"),
)
locations_table = location_index.make_table(metadata)
meta_table = sa.Table(
    "lv_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# statements built once: the commit path runs them thousands of times a second
SELECT_REF = sa.select(refs_table).where(refs_table.c.name == sa.bindparam("ref_name"))
MOVE_BRANCH = refs_table.update().where(
    refs_table.c.name == sa.bindparam("ref_name"),
    refs_table.c.head == sa.bindparam("expected_head"),
    refs_table.c.type == RefType.BRANCH.value,
).values(head=sa.bindparam("new_head"))
INSERT_REFLOG = reflog_table.insert()
INSERT_COMMIT = commits_table.insert()
INSERT_COMMIT_KEYS = commit_keys_table.insert()


def key_text(key: Key) -> str:
    """Keys as JSON text in SQL columns: PostgreSQL text cannot hold the NUL separator."""
    return json.dumps(list(key.elements), separators=(",", ":"))
