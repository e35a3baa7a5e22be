"""Every answer forbids framing and sniffing and allows scripts only from the site; the session cookie
cannot be read by scripts or sent cross-site, and is HTTPS-only in production."""
import pytest

from config import load_config
from tests.conftest import login


@pytest.mark.parametrize("path", ["/login", "/api/health", "/static/app.css", "/no-existe"])
def test_security_headers_on_pages_json_static_and_errors(client, path):
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def _session_cookie(response) -> str:
    [cookie] = [value for value in response.headers.getlist("Set-Cookie") if value.startswith("session=")]
    return cookie


def test_session_cookie_is_httponly_and_samesite(client, make_user):
    username, password = make_user("ana", "clave-segura-1")
    cookie = _session_cookie(login(client, username, password))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_in_production():
    production = load_config({"APP_ENV": "production", "SECRET_KEY": "s" * 40})
    development = load_config({"APP_ENV": "development"})
    assert production["SESSION_COOKIE_SECURE"] is True and production["REMEMBER_COOKIE_SECURE"] is True
    assert development["SESSION_COOKIE_SECURE"] is False
