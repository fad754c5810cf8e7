"""`vigil users create-admin` as a real process: the password from VIGIL_ADMIN_PASSWORD (or
its _FILE), or asked for at the prompt; the account signs in as Admin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from vigil.core.auth.models import User
from vigil.core.auth.passwords import Passwords
from vigil.core.db import Database

VIGIL = [sys.executable, "-m", "vigil"]
CHEAP = {
    "VIGIL_ARGON2_TIME_COST": "1",
    "VIGIL_ARGON2_MEMORY_KIB": "8",
    "VIGIL_ARGON2_PARALLELISM": "1",
}


def run(
    tmp_path: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "VIGIL_DATA_DIR": str(tmp_path / "data"), "VIGIL_DATABASE_URL": ""}
    full.pop("VIGIL_ADMIN_PASSWORD", None)
    return subprocess.run(
        [*VIGIL, "users", *args],
        env={**full, **CHEAP, **env},
        cwd=tmp_path,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stored(tmp_path: Path, email: str) -> User | None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'data' / 'vigil.db'}")
    try:
        with db.session() as session:
            return session.scalar(select(User).where(User.email == email))
    finally:
        db.dispose()


def test_create_admin_reads_the_password_from_the_environment(tmp_path: Path) -> None:
    done = run(
        tmp_path,
        "create-admin",
        "--email",
        "root@example.org",
        VIGIL_ADMIN_PASSWORD="a long password",
    )
    assert done.returncode == 0, done.stderr
    assert "Admin root@example.org created" in done.stdout
    user = stored(tmp_path, "root@example.org")
    assert user is not None
    assert user.role == "admin"
    assert Passwords(1, 8, 1).verify(user.password_hash, "a long password")
    again = run(
        tmp_path,
        "create-admin",
        "--email",
        "ROOT@example.org",
        VIGIL_ADMIN_PASSWORD="a long password",
    )
    assert again.returncode == 1
    assert "exists already" in again.stderr


def test_create_admin_prompts_or_reads_a_file(tmp_path: Path) -> None:
    typed = run(
        tmp_path,
        "create-admin",
        "--email",
        "a@example.org",
        stdin="typed password\ntyped password\n",
    )
    assert typed.returncode == 0, typed.stderr
    secret = tmp_path / "admin_password"
    secret.write_text("from a file, long\n")
    filed = run(
        tmp_path, "create-admin", "--email", "b@example.org", VIGIL_ADMIN_PASSWORD_FILE=str(secret)
    )
    assert filed.returncode == 0, filed.stderr
    user = stored(tmp_path, "b@example.org")
    assert user is not None
    assert Passwords(1, 8, 1).verify(user.password_hash, "from a file, long")
    short = run(tmp_path, "create-admin", "--email", "c@example.org", VIGIL_ADMIN_PASSWORD="short")
    assert short.returncode == 1
    assert "at least 10 characters" in short.stderr
