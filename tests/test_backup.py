"""Backup and restore: a backup restored into a fresh database serves the same city, map verified."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import drop, recreate, url_for

from gridrisk.services.backup import BackupError, backup, restore
from gridrisk.services.risk_map import verify

TABLES = ("cells", "risk_sources", "hazard_points", "shelters", "cell_risk", "events", "risk_source_history")


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _colours(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT c.layer, c.code, r.colour, r.n_red, r.n_orange, r.n_yellow, r.n_blue"
            " FROM cells c JOIN cell_risk r ON r.cell_id = c.id ORDER BY c.layer, c.code"
        ).fetchall()


@pytest.fixture
def fresh_db() -> str:
    name = f"gridrisk_test_restore_{id(object())}"
    recreate(name)
    yield url_for(name)
    drop(name)


def test_backup_restores_into_a_fresh_database_with_a_clean_map(city_db_url, fresh_db, tmp_path):
    with psycopg.connect(city_db_url) as conn:
        # Something on the map, so that a restore that lost colours or counts would show.
        conn.execute(
            "INSERT INTO risk_sources (code, name, category, method, l, s, geom, created_by, updated_by)"
            " SELECT 'RS-B' || c.id, '备份测试', 'hazardous_chemicals', 'LS', 5, 5,"
            " ST_PointOnSurface(c.geom), 'test', 'test'"
            " FROM cells c WHERE c.layer = 'comprehensive' ORDER BY c.id LIMIT 40"
        )
    file = tmp_path / "city.dump"
    steps: list[tuple[str, int, int]] = []
    result = backup(city_db_url, file, progress=lambda *a: steps.append(a))
    assert file.stat().st_size == result.bytes > 0
    assert result.tables >= len(TABLES)
    assert steps[-1][0] == "backup" and steps[-1][1] == steps[-1][2]  # progress reached its end

    restored = restore(fresh_db, file)
    assert restored >= len(TABLES)
    assert _counts(fresh_db) == _counts(city_db_url)
    assert _colours(fresh_db) == _colours(city_db_url)
    assert any(row[2] == "red" for row in _colours(fresh_db))
    with psycopg.connect(fresh_db) as conn:
        assert verify(conn) == []
    # The restored database is alive, not a museum: its triggers recolour on the next write.
    with psycopg.connect(fresh_db) as conn:
        conn.execute("UPDATE risk_sources SET status = 'closed' WHERE code LIKE 'RS-B%'")
        assert verify(conn) == []
        assert not any(r[2] == "red" for r in conn.execute("SELECT 0, 0, colour FROM cell_risk").fetchall())


def test_restore_refuses_a_database_in_use_and_a_file_that_is_not_a_backup(city_db_url, tmp_path):
    file = tmp_path / "city.dump"
    backup(city_db_url, file)
    with pytest.raises(BackupError, match="--clean"):
        restore(city_db_url, file)
    bogus = tmp_path / "bogus.dump"
    bogus.write_text("not a dump")
    with pytest.raises(BackupError, match="not a gridrisk backup"):
        restore(city_db_url, bogus)
    before = _counts(city_db_url)
    assert restore(city_db_url, file, clean=True) > 0  # --clean replaces it, same content
    assert _counts(city_db_url) == before


def test_cli_backup_and_restore(city_db_url, fresh_db, tmp_path):
    gridrisk = str(Path(sys.executable).parent / "gridrisk")
    file = tmp_path / "cli.dump"
    env = {"GRIDRISK_DATABASE_URL": city_db_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([gridrisk, "backup", str(file)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "backed up" in done.stderr
    env["GRIDRISK_DATABASE_URL"] = fresh_db
    done = subprocess.run([gridrisk, "restore", str(file)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([gridrisk, "riskmap", "verify"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([gridrisk, "restore", str(file)], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "--clean" in done.stderr
