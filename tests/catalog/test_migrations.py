"""Schema migrations (Alembic), on SQLite and PostgreSQL: up, down, up again, and the models
agree with what the migrations build (so nobody edits a model and forgets the migration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect

from mediagate.catalog import Catalog
from mediagate.catalog.migrate import alembic_config, downgrade, upgrade
from mediagate.catalog.models import Base

TABLES = set(Base.metadata.tables)


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def test_upgrade_downgrade_upgrade(catalog_url: str) -> None:
    catalog = Catalog(catalog_url)
    try:
        engine = catalog.engine
        assert tables(engine) == set()
        upgrade(engine)
        assert tables(engine) == TABLES
        assert current_revision(engine) == head(engine)
        upgrade(engine)  # idempotent: `mediagate serve` runs it on every start
        downgrade(engine)
        assert tables(engine) == set()
        assert current_revision(engine) is None
        upgrade(engine)
        assert tables(engine) == TABLES
        bucket = catalog.create_bucket("after-roundtrip")  # the rebuilt schema works
        assert catalog.require_bucket("after-roundtrip").id == bucket.id
    finally:
        catalog.close()


def test_models_match_the_migrations(catalog_url: str) -> None:
    engine = create_engine(catalog_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_the_fast_head_check_agrees_with_alembic(catalog_url: str) -> None:
    """upgrade() skips Alembic when the schema is current; its own reading of the head and of the
    database's revision must be Alembic's."""
    from mediagate.catalog import migrate

    engine = create_engine(catalog_url)
    try:
        assert migrate.head_revision() == head(engine)
        assert migrate.current_revision(engine) is None  # empty database
        upgrade(engine)
        assert migrate.current_revision(engine) == current_revision(engine) == head(engine)
        downgrade(engine, "0001")
        assert migrate.current_revision(engine) == "0001"
        upgrade(engine)  # behind: the real upgrade runs
        assert current_revision(engine) == head(engine)
    finally:
        engine.dispose()


def test_a_current_schema_is_checked_without_importing_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    probe = (
        "import sys; from sqlalchemy import create_engine; from mediagate.catalog.migrate import upgrade; "
        f"upgrade(create_engine({url!r})); print('alembic' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_tokens_issued_before_0018_keep_replacing(catalog_url: str) -> None:
    """0018_token_overwrite: a token issued before it was issued under "uploads replace" and may be
    in a browser already, so it keeps that; a token issued after it does not replace by default."""
    from mediagate.core.apikeys import create_key
    from mediagate.core.uploadtokens import issue_upload_token, list_upload_tokens

    catalog = Catalog(catalog_url)
    try:
        upgrade(catalog.engine)
        catalog.create_bucket("photos")
        key, _ = create_key(catalog, bucket="photos", scopes=["write"])
        old, _ = issue_upload_token(catalog, key, "photos", prefix="a/")
        assert old.overwrite is False
        downgrade(catalog.engine, "0017_delivery_attempts")
        assert "overwrite" not in {c["name"] for c in inspect(catalog.engine).get_columns("upload_tokens")}
        upgrade(catalog.engine)
        new, _ = issue_upload_token(catalog, key, "photos", prefix="b/")
        listed = {t.token_id: t.overwrite for t in list_upload_tokens(catalog, "photos")}
        assert listed == {old.token_id: True, new.token_id: False}
    finally:
        catalog.close()
