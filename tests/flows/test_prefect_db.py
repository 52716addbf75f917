"""flows.prefect_db: setup creates Prefect's default local database once, and touches nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, PREFECT_HOME, temporary_settings

from flows import prefect_db


def default_database(home: Path):
    """Prefect settings with PREFECT_HOME=home and the database URL at its default (a session fixture may have
    pointed it at its own test database)."""
    return temporary_settings({PREFECT_HOME: home}, restore_defaults={PREFECT_API_DATABASE_CONNECTION_URL})


def test_sqlite_urls_name_their_file_and_other_databases_none():
    assert prefect_db.local_database_file("sqlite+aiosqlite:////home/u/.prefect/prefect.db") == Path(
        "/home/u/.prefect/prefect.db")
    assert prefect_db.local_database_file("sqlite:///rel/prefect.db?timeout=5") == Path("rel/prefect.db")
    assert prefect_db.local_database_file("sqlite+aiosqlite:///:memory:") is None
    assert prefect_db.local_database_file("postgresql+asyncpg://user:secret@db:5432/prefect") is None


def test_the_default_database_is_created_only_while_its_file_is_missing(tmp_path):
    with default_database(tmp_path):
        assert prefect_db.database_to_create() == tmp_path / "prefect.db"
        (tmp_path / "prefect.db").write_bytes(b"")
        assert prefect_db.database_to_create() is None


def test_a_database_the_user_configured_is_left_alone(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}"  # missing, yet not ours to create
    with temporary_settings({PREFECT_HOME: tmp_path, PREFECT_API_DATABASE_CONNECTION_URL: url}):
        assert prefect_db.database_to_create() is None


def _record_runs(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake_run(args, **kwargs):
        calls.append(list(args))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(prefect_db.subprocess, "run", fake_run)
    return calls


def test_main_runs_prefects_own_migration_command_once(tmp_path, monkeypatch, capsys):
    calls = _record_runs(monkeypatch)
    monkeypatch.delenv("FAEREC_NO_PREFECT_DB", raising=False)
    with default_database(tmp_path):
        assert prefect_db.main() == 0
    assert calls == [[sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]]
    assert str(tmp_path / "prefect.db") in capsys.readouterr().err

    monkeypatch.setenv("FAEREC_NO_PREFECT_DB", "1")
    with default_database(tmp_path):
        assert prefect_db.main() == 0
    assert len(calls) == 1


def test_a_failed_migration_does_not_fail_setup(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prefect_db.subprocess, "run",
                        lambda args, **kw: subprocess.CompletedProcess(args, 1, "", "database is locked"))
    monkeypatch.delenv("FAEREC_NO_PREFECT_DB", raising=False)
    with default_database(tmp_path):
        assert prefect_db.main() == 0
    assert "database is locked" in capsys.readouterr().err


def test_unreadable_settings_do_not_fail_setup(monkeypatch, capsys):
    def broken():
        raise ValueError("profiles.toml: bad value")

    monkeypatch.setattr(prefect_db, "database_to_create", broken)
    monkeypatch.delenv("FAEREC_NO_PREFECT_DB", raising=False)
    assert prefect_db.main() == 0
    assert "profiles.toml: bad value" in capsys.readouterr().err


@pytest.mark.slow
def test_the_real_command_creates_the_migrated_database(tmp_path):
    env_home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-m", "flows.prefect_db"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PREFECT_HOME": str(env_home)})
    assert done.returncode == 0, done.stderr
    assert (env_home / "prefect.db").stat().st_size > 100_000  # every table of every migration
