import os
import re
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from app import create_app
from config import test_config
from extensions import db
from services.signatures import meta_signature
from tests.fakes.graph import FakeGraph
from tests.shared import CORPUS  # noqa: F401 (tests import it from here)


APP_SECRET = "app-secret"


def database_url(tmp_root: Path) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_root / 'test.db'}"


@pytest.fixture(scope="session")
def db_url(tmp_path_factory):
    """A migrated, empty database for the session (SQLite file, or MariaDB with TEST_DATABASE_URL)."""
    url = database_url(tmp_path_factory.mktemp("db"))
    app = create_app(test_config(SQLALCHEMY_DATABASE_URI=url))
    with app.app_context():
        if not url.startswith("sqlite"):
            with db.engine.begin() as connection:
                connection.execute(text("SET FOREIGN_KEY_CHECKS=0"))
                for (table,) in connection.execute(text("SHOW TABLES")).all():
                    connection.execute(text(f"DROP TABLE `{table}`"))
        upgrade()
        downgrade(revision="base")
        upgrade()
        db.engine.dispose()
    return url


def clean_database() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as connection:
        for table in tables:
            connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def media_root(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    return root


@pytest.fixture
def graph():
    fake = FakeGraph().start()
    yield fake
    fake.stop()


@pytest.fixture
def make_app(db_url, media_root, graph):
    apps = []

    def build(**overrides):
        config = test_config(SQLALCHEMY_DATABASE_URI=db_url, MEDIA_ROOT=str(media_root), GRAPH_API_URL=graph.url,
                             META_TOKEN="test-token", PHONE_NUMBER_ID="1122334455667",
                             JOB_RETRY_DELAYS=(0.05, 0.1, 0.2), MEDIA_RETRY_DELAYS=(0.05, 0.1))
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app
    yield build
    for app in apps:
        jobs = app.extensions["jobs"]
        if hasattr(jobs, "wait_idle"):
            jobs.wait_idle(15)
    with apps[0].app_context() if apps else build().app_context():
        clean_database()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def wait_for_jobs(app, timeout: float = 15) -> None:
    assert app.extensions["jobs"].wait_idle(timeout), "background jobs did not finish"


def post_webhook(client, body: bytes, secret: str | None = APP_SECRET, **headers):
    if secret:
        headers.setdefault("X-Hub-Signature-256", meta_signature(secret, body))
    return client.post("/webhook", data=body, headers=headers, content_type="application/json")


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert match, f"no CSRF token in {path}"
    return match.group(1)


def login(client, username: str, password: str):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_token(client)})


@pytest.fixture
def make_user(app):
    from services.auth import create_user

    def build(username="agente", password="contraseña-segura", roles=(), admin=False):
        with app.app_context():
            create_user(username, password, roles, admin)
        return username, password
    return build


@pytest.fixture
def admin_client(client, make_user):
    username, password = make_user("jefa", "clave-de-admin-1", admin=True)
    assert login(client, username, password).status_code == 302
    return client


def text_payload(wamid: str, numero: str = "5215512345678", body: str = "hola", timestamp: int = 1700000000,
                 name: str = "Cliente") -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550000000",
                                                      "phone_number_id": "1122334455667"},
        "contacts": [{"profile": {"name": name}, "wa_id": numero}],
        "messages": [{"from": numero, "id": wamid, "timestamp": str(timestamp), "type": "text",
                      "text": {"body": body}}]}}]}]}
