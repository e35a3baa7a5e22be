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
