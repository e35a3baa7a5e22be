import hashlib

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select
from werkzeug.security import check_password_hash

from config import load_config
from extensions import db
from models import Role, User
from tests.conftest import csrf_token, login

PROTECTED = ["/", "/api/status", "/export/conversation/123", "/export/conversation/123.csv"]


def test_pages_and_exports_require_login(client):
    for path in PROTECTED:
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    assert client.get("/api/health").status_code == 200


def test_login_with_right_password_then_logout(client, make_user):
    make_user("ana", "una-clave-larga")
    response = login(client, "ana", "una-clave-larga")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert client.get("/").status_code == 302


def test_wrong_password_unknown_user_and_disabled_user_are_refused(app, client, make_user):
    make_user("ana", "una-clave-larga")
    assert login(client, "ana", "otra-clave").status_code == 401
    assert login(client, "nadie", "una-clave-larga").status_code == 401
    with app.app_context():
        db.session.scalar(select(User).filter_by(username="ana")).active = False
        db.session.commit()
    assert login(client, "ana", "una-clave-larga").status_code == 401
    assert client.get("/").status_code == 302


def test_login_without_csrf_token_is_refused(client, make_user):
    make_user("ana", "una-clave-larga")
    response = client.post("/login", data={"username": "ana", "password": "una-clave-larga"})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_next_parameter_cannot_redirect_off_site(client, make_user):
    make_user("ana", "una-clave-larga")
    token = csrf_token(client)
    response = client.post("/login?next=//evil.example/x", data={"username": "ana", "password": "una-clave-larga",
                                                                 "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_legacy_sha256_hash_is_accepted_once_and_rehashed(app, client):
    with app.app_context():
        db.session.add(User(username="viejo", password_hash=hashlib.sha256(b"clave-antigua").hexdigest(),
                            is_admin=False, active=True))
        db.session.commit()
    assert login(client, "viejo", "mala").status_code == 401
    assert login(client, "viejo", "clave-antigua").status_code == 302
    with app.app_context():
        stored = db.session.scalar(select(User).filter_by(username="viejo")).password_hash
    assert stored.startswith(("scrypt:", "pbkdf2:"))
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert login(client, "viejo", "clave-antigua").status_code == 302


def test_login_is_rate_limited(make_app, make_user):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    make_user("ana", "una-clave-larga")
    codes = [login(client, "ana", "mala").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert login(client, "ana", "una-clave-larga").status_code == 429


def test_create_user_command_creates_missing_roles(app, runner):
    result = runner.invoke(args=["create-user", "luis", "--password", "clave-de-luis", "--role", "ventas",
                                 "--role", "soporte"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(username="luis"))
        assert sorted(r.name for r in user.roles) == ["soporte", "ventas"] and not user.is_admin
        assert db.session.scalar(select(Role).filter_by(name="ventas")) is not None
    again = runner.invoke(args=["create-user", "luis", "--password", "clave-de-luis"])
    assert again.exit_code != 0 and "ya existe" in again.output
    short = runner.invoke(args=["create-user", "eva", "--password", "corta", "--admin"])
    assert short.exit_code != 0 and "8 caracteres" in short.output


def test_seed_creates_admin_once_with_generated_password(app, runner):
    first = runner.invoke(args=["seed"])
    assert "contraseña" in first.output
    password = first.output.split("contraseña ")[1].split(" ")[0]
    assert runner.invoke(args=["seed"]).output.strip() == "El usuario admin ya existe."
    client = app.test_client()
    assert login(client, "admin", password).status_code == 302


def test_seed_uses_admin_password_setting(make_app):
    app = make_app(ADMIN_PASSWORD="clave-del-entorno")
    assert "contraseña" not in app.test_cli_runner().invoke(args=["seed"]).output
    assert login(app.test_client(), "admin", "clave-del-entorno").status_code == 302


def _signed_with(secret_key: str, session: dict) -> str:
    """A session cookie as anyone who knows `secret_key` can make it."""
    signer = Flask("forger")
    signer.secret_key = secret_key
    return SecureCookieSessionInterface().get_signing_serializer(signer).dumps(session)


def test_a_cookie_signed_with_the_old_published_key_opens_nothing(make_app, make_user, tmp_path):
    unset = load_config({"APP_ENV": "development"})["SECRET_KEY"]
    app = make_app(SECRET_KEY=unset, SECRET_KEY_FILE=str(tmp_path / "secret_key"))
    username, password = make_user("jefa", "clave-de-admin-1", admin=True)
    client = app.test_client()
    assert login(client, username, password).status_code == 302
    with client.session_transaction() as session:
        signed_in = dict(session)
    for forged_session in (signed_in, {**signed_in, "_user_id": signed_in["_user_id"].split(":")[0]}):
        forger = app.test_client()
        forger.set_cookie("session", _signed_with("dev-insecure-secret-key", forged_session))
        for path in ("/", "/roles", "/configuracion/reglas"):
            response = forger.get(path)
            assert response.status_code == 302 and "/login" in response.headers["Location"], path
    genuine = app.test_client()
    genuine.set_cookie("session", _signed_with(app.secret_key, signed_in))
    assert genuine.get("/roles").status_code == 200


def _with_cookie(app, cookie: str):
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client


def _user_page(app, username: str) -> str:
    with app.app_context():
        return f"/roles/usuarios/{db.session.scalar(select(User.id).filter_by(username=username))}"


def test_a_cookie_saved_before_logout_no_longer_opens_the_panel(app, client, make_user):
    make_user("ana", "una-clave-larga")
    assert login(client, "ana", "una-clave-larga").status_code == 302
    saved = client.get_cookie("session").value
    assert _with_cookie(app, saved).get("/").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    response = _with_cookie(app, saved).get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_logout_is_post_only(client, make_user):
    make_user("ana", "una-clave-larga")
    assert login(client, "ana", "una-clave-larga").status_code == 302
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200
    assert client.post("/logout").status_code == 400  # no CSRF token: a cross-site form cannot sign anyone out
    assert client.get("/").status_code == 200


def test_a_password_change_ends_the_users_sessions_but_not_a_new_login(app, admin_client, make_user):
    make_user("agente", "clave-vieja-1")
    agent = app.test_client()
    assert login(agent, "agente", "clave-vieja-1").status_code == 302
    saved = agent.get_cookie("session").value
    page = _user_page(app, "agente")
    assert admin_client.post(page + "/contrasena", data={"password": "clave-nueva-1", "confirm": "clave-nueva-1",
                                                        "csrf_token": csrf_token(admin_client, page)}).status_code == 302
    assert agent.get("/").status_code == 302 and _with_cookie(app, saved).get("/").status_code == 302
    fresh = app.test_client()
    assert login(fresh, "agente", "clave-nueva-1").status_code == 302
    assert fresh.get("/").status_code == 200


def test_an_admin_changing_their_own_password_stays_signed_in_here_only(app, admin_client):
    saved = admin_client.get_cookie("session").value
    page = _user_page(app, "jefa")
    assert admin_client.post(page + "/contrasena", data={"password": "clave-nueva-1", "confirm": "clave-nueva-1",
                                                        "csrf_token": csrf_token(admin_client, page)}).status_code == 302
    assert admin_client.get(page).status_code == 200
    assert _with_cookie(app, saved).get(page).status_code == 302


def test_a_session_ended_by_deactivation_stays_ended_after_reactivation(app, admin_client, make_user):
    make_user("agente", "clave-de-agente")
    agent = app.test_client()
    assert login(agent, "agente", "clave-de-agente").status_code == 302
    page = _user_page(app, "agente")
    for action in ("desactivar", "activar"):
        assert admin_client.post(f"{page}/{action}",
                                 data={"csrf_token": csrf_token(admin_client, page)}).status_code == 302
    assert agent.get("/").status_code == 302


def test_unknown_and_disabled_users_cost_the_same_password_check(app, client, make_user, monkeypatch):
    import services.auth
    checks = []

    def counted_check(stored, password):
        checks.append(stored)
        return check_password_hash(stored, password)
    monkeypatch.setattr(services.auth, "check_password_hash", counted_check)
    make_user("ana", "una-clave-larga")
    make_user("eva", "otra-clave-larga")
    with app.app_context():
        db.session.scalar(select(User).filter_by(username="eva")).active = False
        db.session.commit()
    for username, password in (("ana", "mala"), ("nadie", "una-clave-larga"), ("eva", "otra-clave-larga")):
        checks.clear()
        assert login(client, username, password).status_code == 401
        assert len(checks) == 1 and checks[0].startswith(("scrypt:", "pbkdf2:")), username


def _attempt(client, username: str, remote_addr: str = "127.0.0.1", forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/login", data={"username": username, "password": "mala", "csrf_token": csrf_token(client)},
                       headers=headers, environ_base={"REMOTE_ADDR": remote_addr}).status_code


def test_x_forwarded_for_is_ignored_without_trusted_proxies(make_app):
    client = make_app(LOGIN_RATE_LIMIT="2 per minute").test_client()
    codes = [_attempt(client, f"usuario{n}", forwarded_for=f"203.0.113.{n}") for n in range(3)]
    assert codes == [401, 401, 429]


def test_x_forwarded_for_names_the_client_behind_trusted_proxies(make_app):
    client = make_app(LOGIN_RATE_LIMIT="2 per minute", TRUSTED_PROXIES=1).test_client()
    assert [_attempt(client, f"usuario{n}", forwarded_for=f"203.0.113.{n}") for n in range(3)] == [401] * 3
    codes = [_attempt(client, f"otro{n}", forwarded_for="198.51.100.7") for n in range(3)]
    assert codes == [401, 401, 429]


def test_attempts_on_one_username_from_many_addresses_are_limited(make_app, make_user):
    app = make_app()
    client = app.test_client()
    make_user("ana", "una-clave-larga")
    codes = [_attempt(client, "ana" if n % 2 else " ANA ", remote_addr=f"10.0.0.{n}") for n in range(11)]
    assert codes == [401] * 10 + [429]
    assert login(client, "ana", "una-clave-larga").status_code == 429
    assert _attempt(client, "eva", remote_addr="10.0.1.1") == 401
