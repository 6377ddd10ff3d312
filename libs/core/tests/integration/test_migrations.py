"""Migrations against the real PostgreSQL server, in a throw-away schema."""

import uuid

import asyncpg
import pytest

from mailstream.core.migrations import apply_migrations
from mailstream.core.settings import CommonSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn():
    url = CommonSettings.from_env().database_url
    try:
        connection = await asyncpg.connect(url)
    except OSError as exc:
        pytest.fail(f"PostgreSQL is not reachable at the configured URL ({exc}); start it with `make run`")
    schema = f"test_{uuid.uuid4().hex[:10]}"
    await connection.execute(f"CREATE SCHEMA {schema}")
    await connection.execute(f"SET search_path TO {schema}")
    yield connection
    await connection.execute(f"DROP SCHEMA {schema} CASCADE")
    await connection.close()


async def test_applies_files_in_order_once_and_records_them(conn, tmp_path):
    (tmp_path / "0002_more.sql").write_text("INSERT INTO things VALUES (2);")
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (n int); INSERT INTO things VALUES (1);")
    (tmp_path / "notes.txt").write_text("not a migration")

    assert await apply_migrations(conn, "demo", tmp_path) == ["0001_things.sql", "0002_more.sql"]
    assert await apply_migrations(conn, "demo", tmp_path) == []
    assert [r["n"] for r in await conn.fetch("SELECT n FROM things ORDER BY n")] == [1, 2]
    recorded = await conn.fetch("SELECT version FROM schema_migrations WHERE component = 'demo' ORDER BY version")
    assert [r["version"] for r in recorded] == ["0001_things.sql", "0002_more.sql"]


async def test_a_failing_migration_leaves_nothing_half_applied(conn, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (n int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE broken (n nonsense_type);")
    with pytest.raises(asyncpg.PostgresError):
        await apply_migrations(conn, "demo", tmp_path)
    assert await conn.fetchval("SELECT to_regclass('ok')") is None
