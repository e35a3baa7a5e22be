"""The baseline for bench/webhook_bench.py: a bare Flask app with one POST endpoint.

It reads the body and answers 200 with a small JSON, nothing else (no signature check,
no JSON parsing, no database), so the ratio app/bare shows what the real webhook costs
on top of Flask + gunicorn + HTTP on the same machine with the same worker settings.

    gunicorn -w 2 -k gthread --threads 4 -b 127.0.0.1:5099 'bench.bare_app:create_app()'
"""
from flask import Flask, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhook")
    def receive():
        request.get_data(cache=False)
        return jsonify(status="ok")

    @app.get("/webhook")
    def ready():
        return "ok"

    return app


def create_insert_app() -> Flask:
    """The floor under the real webhook: the bare endpoint plus the one thing the webhook cannot skip, its
    durable INSERT into `webhook_events` (one autocommit PyMySQL connection per server thread, no Flask
    extensions, no signature check, no parsing). Diagnostic target `bare-insert` of webhook_bench.py."""
    import os
    import threading

    import pymysql
    from sqlalchemy.engine import make_url

    from models.types import utcnow

    url = make_url(os.environ["DATABASE_URL"])
    local = threading.local()
    app = Flask(__name__)

    def connection():
        if getattr(local, "connection", None) is None:
            local.connection = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username,
                                               password=url.password or "", database=url.database,
                                               charset="utf8mb4", autocommit=True)
        return local.connection

    @app.post("/webhook")
    def receive():
        raw = request.get_data(cache=False).decode("utf-8")
        with connection().cursor() as cursor:
            cursor.execute("INSERT INTO webhook_events (source, kind, payload, received_at) VALUES (%s, %s, %s, %s)",
                           ("meta", "text", raw, utcnow()))
            event_id = cursor.lastrowid
        return jsonify(status="ok", event=event_id)

    @app.get("/webhook")
    def ready():
        return "ok"

    return app
