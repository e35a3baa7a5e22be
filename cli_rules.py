"""`flask --app app import-rules FILE [--merge]` and `flask --app app export-rules FILE`."""
import click

from services.rules import export_rules, import_rules


def register(app) -> None:
    @app.cli.command("import-rules")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--merge", is_flag=True, help="Agrega las reglas del archivo a las actuales en vez de reemplazarlas.")
    def import_rules_command(path, merge):
        """Carga las reglas del bot desde un .xlsx (todo o nada)."""
        report = import_rules(path, merge=merge)
        if not report.ok:
            for line in report.error_lines():
                click.echo(line, err=True)
            click.echo(f"No se importó nada: {report.error_count} errores.", err=True)
            raise SystemExit(1)
        detail = "agregadas" if merge else f"importadas; reemplazan a las {report.replaced} anteriores"
        click.echo(f"{report.imported} reglas {detail}")

    @app.cli.command("export-rules")
    @click.argument("path", type=click.Path(dir_okay=False, writable=True))
    def export_rules_command(path):
        """Escribe todas las reglas del bot en un .xlsx."""
        count = export_rules(path)
        click.echo(f"{count} reglas exportadas a {path}")
