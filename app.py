"""Application factory. Nothing happens at import."""
import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import ConfigError, instance_secret_key, load_config


def create_app(config: dict | None = None) -> Flask:
    """Build the app from `config` (tests) or from the environment."""
    if config is None:
        try:
            config = load_config()
        except ConfigError as error:
            raise SystemExit(f"Error de configuración: {error}") from None
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config)
    from routes.json_io import StrictJSONProvider
    app.json = StrictJSONProvider(app)
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not app.config["SECRET_KEY"]:
        try:
            app.config["SECRET_KEY"] = instance_secret_key(app.config["SECRET_KEY_FILE"])
        except ConfigError as error:
            raise SystemExit(f"Error de configuración: {error}") from None

    from extensions import csrf, db, limiter, login_manager, migrate
    from services.adapters import engine_options, install_database_hooks
    install_database_hooks()
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path) + "/migrations")
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    from services import adapters
    adapters.init_app(app)

    from routes import register_blueprints
    register_blueprints(app)

    from cli import register_commands
    register_commands(app)
    return app
