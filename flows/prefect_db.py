"""Create Prefect's local database once, at set-up time, so the first `faerec pipeline` does not pay for it.

``python -m flows.prefect_db`` (run by scripts/setup.sh). The temporary server of the first pipeline run on a
new machine would otherwise create the SQLite database and apply all of Prefect's migrations while the flow
waits: 8.6 s to a healthy server with the database in place against 18.7-26.1 s without it, measured one
after the other on a 2-core machine (server process started alone, fresh PREFECT_HOME each time).

Only the default local database is touched, and only when its file does not exist yet: a database URL
configured by the user (PREFECT_API_DATABASE_CONNECTION_URL, e.g. a shared Postgres) and an existing file are
left alone (the server migrates an existing file itself when Prefect is upgraded).
``FAEREC_NO_PREFECT_DB=1`` skips the step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SQLITE_PREFIXES = ("sqlite+aiosqlite:///", "sqlite:///")


def local_database_file(url: str) -> Path | None:
    """The file of a SQLite database URL, else None (another database server, or an in-memory SQLite)."""
    for prefix in SQLITE_PREFIXES:
        if url.startswith(prefix):
            path = url[len(prefix):].split("?", 1)[0]
            return Path(path) if path and path != ":memory:" else None
    return None


def database_to_create() -> Path | None:
    """The default local database file when it is still to be created; None when there is nothing to do."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if "connection_url" in settings.server.database.model_fields_set:
        return None  # the user chose a database: not ours to create or migrate
    path = local_database_file(settings.server.database.connection_url.get_secret_value())
    if path is None or path.exists():
        return None
    return path


def main() -> int:
    if os.environ.get("FAEREC_NO_PREFECT_DB"):
        return 0
    try:
        path = database_to_create()
    except Exception as exc:  # e.g. a broken Prefect profile: Prefect itself will report it on first use
        print(f"setup: Prefect's settings could not be read, so its database is left to the first run: {exc}",
              file=sys.stderr)
        return 0
    if path is None:
        return 0
    print(f"setup: creating Prefect's database {path} (FAEREC_NO_PREFECT_DB=1 skips it)", file=sys.stderr)
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": os.environ.get("PREFECT_SERVER_ANALYTICS_ENABLED",
                                                                            "false")}
    done = subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        # not fatal: the first pipeline run's server creates the database instead, only more slowly
        print(f"setup: Prefect's database was not created (the first run will create it): "
              f"{(done.stderr or done.stdout).strip()[-500:]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
