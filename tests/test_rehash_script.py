"""scripts/rehash_passwords.py: bulk-wrap legacy SHA-256 hashes; the next login re-hashes them."""
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from werkzeug.security import check_password_hash

from extensions import db
from models import User
from tests.conftest import login

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rehash_passwords.py"
BARE_HEX = re.compile(r"^[0-9a-f]{64}$")


def load_script():
    spec = importlib.util.spec_from_file_location("rehash_passwords_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stored_hash(app, username: str) -> str:
    with app.app_context():
        return db.session.scalar(select(User.password_hash).filter_by(username=username))


def set_hash(app, username: str, value: str) -> None:
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(username=username))
        user.password_hash = value
        db.session.commit()


def test_script_wraps_legacy_hash_and_login_rehashes(app, client, make_user, capsys):
    username, password = make_user("legado", "clave-antigua-123")
    make_user("moderno", "clave-moderna-456")
    modern_before = stored_hash(app, "moderno")
    set_hash(app, username, hashlib.sha256(password.encode()).hexdigest())
    assert BARE_HEX.match(stored_hash(app, username))

    assert load_script().main(app) == 1
    assert "1 hash" in capsys.readouterr().out

    wrapped = stored_hash(app, username)
    assert not BARE_HEX.match(wrapped)
    assert password not in wrapped and hashlib.sha256(password.encode()).hexdigest() not in wrapped
    assert wrapped.startswith("sha256$")
    assert stored_hash(app, "moderno") == modern_before, "a Werkzeug hash must be left alone"

    assert load_script().main(app) == 0, "running the script again changes nothing"
    assert stored_hash(app, username) == wrapped

    assert login(client, username, "contraseña-equivocada").status_code == 401
    assert stored_hash(app, username) == wrapped

    assert login(client, username, password).status_code == 302
    upgraded = stored_hash(app, username)
    assert not upgraded.startswith("sha256$") and not BARE_HEX.match(upgraded)
    assert check_password_hash(upgraded, password)


def test_script_runs_from_the_repository_root(app, db_url, make_user):
    """`.venv/bin/python scripts/rehash_passwords.py` works as a program, with settings from the environment."""
    username, password = make_user("legado2", "otra-clave-789")
    set_hash(app, username, hashlib.sha256(password.encode()).hexdigest())
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret", "APP_ENV": "development",
           "WHATSAPP_TRANSPORT": "sandbox", "JOBS_BACKEND": "thread"}
    result = subprocess.run([sys.executable, "scripts/rehash_passwords.py"], cwd=SCRIPT.parents[1], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 hash"), result.stdout
    assert stored_hash(app, username).startswith("sha256$")
