import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from config import ConfigError, load_config


def test_defaults_need_nothing():
    config = load_config({})
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert config["WHATSAPP_TRANSPORT"] == "sandbox" and config["JOBS_BACKEND"] == "thread"
    assert config["SECRET_KEY"] is None


def test_mysql_url_is_built_from_db_settings():
    config = load_config({"DB_HOST": "db.local", "DB_USER": "bot", "DB_PASSWORD": "p@ss word", "DB_NAME": "wa"})
    assert config["SQLALCHEMY_DATABASE_URI"] == "mysql+pymysql://bot:p%40ss+word@db.local:3306/wa?charset=utf8mb4"
    assert load_config({"DATABASE_URL": "mysql://u@h/d"})["SQLALCHEMY_DATABASE_URI"] == "mysql+pymysql://u@h/d"


def test_transport_defaults_to_cloud_with_a_token():
    assert load_config({"META_TOKEN": "t"})["WHATSAPP_TRANSPORT"] == "cloud"


@pytest.mark.parametrize("env, name", [
    ({"SESSION_TIMEOUT": "diez"}, "SESSION_TIMEOUT"),
    ({"SESSION_TIMEOUT": "0"}, "SESSION_TIMEOUT"),
    ({"JOBS_BACKEND": "celery"}, "JOBS_BACKEND"),
    ({"JOBS_BACKEND": "rq"}, "JOBS_BACKEND"),
    ({"INIT_DB_ON_START": "quizas"}, "INIT_DB_ON_START"),
    ({"WHATSAPP_TRANSPORT": "cloud"}, "WHATSAPP_TRANSPORT"),
    ({"GRAPH_API_URL": "ftp://x"}, "GRAPH_API_URL"),
    ({"DATABASE_URL": "postgres://x"}, "DATABASE_URL"),
    ({"APP_ENV": "production"}, "SECRET_KEY"),
])
def test_bad_values_fail_with_one_line_naming_the_variable(env, name):
    with pytest.raises(ConfigError) as error:
        load_config(env)
    assert name in str(error.value) and "\n" not in str(error.value)


def test_app_start_with_bad_setting_exits_with_the_message(monkeypatch):
    from app import create_app
    monkeypatch.setenv("SESSION_TIMEOUT", "nunca")
    with pytest.raises(SystemExit) as exit_info:
        create_app()
    assert "SESSION_TIMEOUT" in str(exit_info.value.code)


def test_no_secret_key_means_no_published_default_and_production_refuses():
    assert load_config({"APP_ENV": "development"})["SECRET_KEY"] is None
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"APP_ENV": "production", "SECRET_KEY": ""})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"APP_ENV": "development", "SECRET_KEY": "dev-insecure-secret-key"})


def test_unset_secret_key_is_generated_once_and_kept_private(make_app, tmp_path, caplog):
    key_file = tmp_path / "instance" / "secret_key"
    unset = load_config({"APP_ENV": "development"})["SECRET_KEY"]
    with caplog.at_level("WARNING"):
        first = make_app(SECRET_KEY=unset, SECRET_KEY_FILE=str(key_file))
    assert [r for r in caplog.records if str(key_file) in r.getMessage()]
    second = make_app(SECRET_KEY=unset, SECRET_KEY_FILE=str(key_file))
    assert len(first.secret_key) == 64 and first.secret_key == second.secret_key == key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_workers_starting_together_agree_on_the_generated_key(tmp_path):
    from config import instance_secret_key
    key_file = tmp_path / "secret_key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: instance_secret_key(str(key_file)), range(16)))
    assert keys == {key_file.read_text().strip()}


PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "s" * 64}


def test_production_refuses_meta_without_app_secret():
    with pytest.raises(ConfigError) as error:
        load_config({**PRODUCTION, "META_TOKEN": "t"})
    assert "META_APP_SECRET" in str(error.value) and "\n" not in str(error.value)
    assert load_config({**PRODUCTION, "META_TOKEN": "t", "META_APP_SECRET": "a"})["META_APP_SECRET"] == "a"
    assert load_config({"APP_ENV": "development", "META_TOKEN": "t"})["META_APP_SECRET"] is None


def test_production_refuses_twilio_settings_without_auth_token():
    with pytest.raises(ConfigError) as error:
        load_config({**PRODUCTION, "TWILIO_MEDIA_HOSTS": "media.example.com"})
    assert "TWILIO_AUTH_TOKEN" in str(error.value) and "\n" not in str(error.value)
    assert load_config({**PRODUCTION, "TWILIO_MEDIA_HOSTS": "media.example.com", "TWILIO_AUTH_TOKEN": "x"})
    assert load_config({**PRODUCTION, "TWILIO_MEDIA_HOSTS": "api.twilio.com"})["TWILIO_AUTH_TOKEN"] is None
    assert load_config({"APP_ENV": "development", "TWILIO_MEDIA_HOSTS": "media.example.com"})


def test_proxy_hops_and_login_limits_are_validated():
    assert load_config({})["TRUSTED_PROXIES"] == 0 and load_config({"TRUSTED_PROXIES": "2"})["TRUSTED_PROXIES"] == 2
    config = load_config({"LOGIN_RATE_LIMIT": "5 per minute"})
    assert config["LOGIN_USER_RATE_LIMIT"] == "5 per minute"
    for env, name in (({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES"), ({"TRUSTED_PROXIES": "uno"}, "TRUSTED_PROXIES"),
                      ({"LOGIN_RATE_LIMIT": "muchos"}, "LOGIN_RATE_LIMIT"),
                      ({"LOGIN_USER_RATE_LIMIT": "10 per fortnight"}, "LOGIN_USER_RATE_LIMIT")):
        with pytest.raises(ConfigError) as error:
            load_config(env)
        assert name in str(error.value) and "\n" not in str(error.value)
