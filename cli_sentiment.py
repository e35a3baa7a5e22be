"""`flask --app app sentiment classify`: one text a line on stdin, one JSON object a line on stdout."""
import json
import sys

import click

from services.sentiment import classify


def register(app) -> None:
    @app.cli.group("sentiment")
    def sentiment_group():
        """Análisis de sentimiento."""

    @sentiment_group.command("classify")
    def classify_command():
        """Lee un texto por línea en la entrada y escribe {"label", "score"} por línea, con el proveedor configurado.

        Una línea vacía, o todo con SENTIMENT_PROVIDER=off, da {"label": null, "score": null}."""
        for line in sys.stdin:
            result = classify(line.rstrip("\r\n"))
            click.echo(json.dumps(result.as_dict() if result else {"label": None, "score": None}, ensure_ascii=False))
            sys.stdout.flush()
