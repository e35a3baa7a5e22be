"""`flask --app app stt ...`: the Vosk model for voice notes (DESIGN §6)."""
import shutil
import tempfile
import zipfile
from pathlib import Path

import click
import requests
from flask import current_app
from flask.cli import AppGroup

MODELS_URL = "https://alphacephei.com/vosk/models"
# The small models: enough for menus and short answers, ~50 MB, fast on one core.
MODELS = {"es": "vosk-model-small-es-0.42", "en": "vosk-model-small-en-us-0.15", "pt": "vosk-model-small-pt-0.3",
          "fr": "vosk-model-small-fr-0.22", "de": "vosk-model-small-de-0.15", "it": "vosk-model-small-it-0.22",
          "ko": "vosk-model-small-ko-0.22"}
TIMEOUT = (10, 60)


class DownloadError(Exception):
    pass


def download_model(name: str, base_url: str, destination: Path) -> Path:
    """Fetch `<base_url>/<name>.zip` and unpack it as `destination/<name>`; returns the model folder."""
    target = destination / name
    if (target / "am").is_dir() and (target / "conf").is_dir():
        return target
    destination.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{name}.zip"
    with tempfile.TemporaryDirectory(dir=destination, prefix=".download-") as work:
        archive = Path(work) / f"{name}.zip"
        try:
            with requests.get(url, stream=True, timeout=TIMEOUT) as response:
                if response.status_code != 200:
                    raise DownloadError(f"{url} respondió HTTP {response.status_code}")
                with archive.open("wb") as handle:
                    for chunk in response.iter_content(1024 * 1024):
                        handle.write(chunk)
        except requests.RequestException as error:
            raise DownloadError(f"no se pudo conectar con {url} ({type(error).__name__})") from None
        try:
            with zipfile.ZipFile(archive) as bundle:
                root = Path(work) / "unpacked"
                for member in bundle.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise DownloadError(f"el zip contiene una ruta no permitida: {member}")
                bundle.extractall(root)
        except zipfile.BadZipFile:
            raise DownloadError(f"{url} no es un zip válido") from None
        found = [p.parent for p in root.rglob("am") if p.is_dir() and (p.parent / "conf").is_dir()]
        if not found:
            raise DownloadError(f"el zip de {url} no contiene un modelo Vosk (faltan am/ y conf/)")
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(found[0]), target)
    return target


def register(app) -> None:
    stt = AppGroup("stt", help="Modelo de reconocimiento de voz (Vosk) para las notas de voz.")

    @stt.command("download-model")
    @click.argument("lang", default="es")
    @click.option("--base-url", envvar="VOSK_MODELS_URL", default=MODELS_URL, show_default=True,
                  help="Dónde están los zip de los modelos (VOSK_MODELS_URL).")
    @click.option("--name", help="Nombre exacto del modelo (por omisión, el pequeño del idioma).")
    @click.option("--dest", type=click.Path(file_okay=False), help="Carpeta destino (por omisión instance/vosk).")
    def download_model_command(lang, base_url, name, dest):
        """Descarga un modelo Vosk (español por omisión) e indica el VOSK_MODEL_PATH a configurar."""
        name = name or MODELS.get(lang.lower())
        if not name:
            raise click.ClickException(f"idioma sin modelo conocido: {lang} (use --name; conocidos: "
                                       f"{', '.join(sorted(MODELS))})")
        destination = Path(dest) if dest else Path(current_app.instance_path) / "vosk"
        try:
            target = download_model(name, base_url, destination)
        except DownloadError as error:
            raise click.ClickException(f"no se pudo descargar el modelo {name}: {error}") from None
        click.echo(f"Modelo {name} listo. Configure VOSK_MODEL_PATH={target.resolve()}")

    app.cli.add_command(stt)
