"""Checking a rule before it is saved: one function for the form, the sheet import and the CLI."""
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from urllib.parse import urlsplit

from models.rule import RULE_TYPES
from services.text import normalize

COLUMNS = ("step", "input_text", "respuesta", "tipo", "opciones", "siguiente_step", "prioridad", "avanzar",
           "rol_keyword", "handler", "calculo", "media_url")
MEDIA_TYPES = ("imagen", "documento", "audio", "video")
WILDCARD = "*"
MAX_LENGTHS = {"step": 120, "siguiente_step": 120, "rol_keyword": 80, "handler": 80, "media_url": 1024,
               "input_text": 2000, "opciones": 2000, "calculo": 2000, "respuesta": 4096}
MAX_BUTTONS, MAX_BUTTON_TITLE = 3, 20
MAX_LIST_ROWS, MAX_ROW_TITLE = 10, 24
MAX_INTERACTIVE_BODY = 1024
MAX_PRIORITY = 1_000_000
YES = {"si", "sí", "true", "1", "verdadero"}
NO = {"no", "false", "0", "falso", ""}


class RuleError(ValueError):
    """A rule change that would leave a bad rule set; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


def known_handler_names() -> frozenset[str]:
    """The custom handlers the flow engine has registered (the default allow-list for `handler`)."""
    from services.flow import HANDLERS
    return frozenset(HANDLERS)


def as_text(value) -> str:
    """A form value or a cell as text: whole floats without ".0", booleans as si/no, newlines as \n."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "si" if value else "no"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (datetime, date, time)):
        value = value.isoformat()
    return str(value).replace("\r\n", "\n").replace("\r", "\n")


def parse_priority(value) -> int | None:
    """A prioridad from a form or a cell: whole number ≥ 1, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() and 1 <= value <= MAX_PRIORITY else None
    if isinstance(value, int):
        return value if 1 <= value <= MAX_PRIORITY else None
    text = as_text(value).strip()
    if not text:
        return 1
    if text.endswith(".0"):
        text = text[:-2]
    return int(text) if text.isdigit() and 1 <= int(text) <= MAX_PRIORITY else None


def parse_yes_no(value) -> bool | None:
    """avanzar from a form or a cell: si/sí/true/1 → True, no/false/0/blank → False, else None."""
    if isinstance(value, bool):
        return value
    text = as_text(value).strip().lower()
    return True if text in YES else False if text in NO else None


def split_options(opciones: str | None) -> list[str]:
    """The list rows or button titles of a rule, in order."""
    return [part.strip() for part in (opciones or "").split("|") if part.strip()]


def is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def _check_options(values: dict, errors: dict) -> None:
    tipo, options = values["tipo"], split_options(values["opciones"])
    most, longest, what = ((MAX_LIST_ROWS, MAX_ROW_TITLE, "filas de lista") if tipo == "lista"
                           else (MAX_BUTTONS, MAX_BUTTON_TITLE, "botones"))
    if not options:
        errors["opciones"] = f"el tipo {tipo} necesita de 1 a {most} {what} separados por |"
    elif len(options) > most:
        errors["opciones"] = f"hay {len(options)} {what}; WhatsApp admite como máximo {most}"
    elif too_long := [o for o in options if len(o) > longest]:
        errors["opciones"] = (f"WhatsApp admite títulos de hasta {longest} caracteres en {what}; "
                              f"acorte: {', '.join(too_long)}")
    elif len({normalize(o) for o in options}) < len(options):
        errors["opciones"] = f"hay {what} repetidos; cada uno debe ser distinto"
    if not values["respuesta"].strip():
        errors["respuesta"] = f"el tipo {tipo} necesita un texto que acompañe a los {what}"
    elif len(values["respuesta"]) > MAX_INTERACTIVE_BODY:
        errors["respuesta"] = f"con {what} WhatsApp admite hasta {MAX_INTERACTIVE_BODY} caracteres de texto"


def validate_rule(raw: Mapping, steps: Iterable[str], known_handlers: Iterable[str] | None = None,
                  has_media: bool = False) -> tuple[dict, dict[str, str]]:
    """Clean one rule's raw values (from a form or a sheet row) and say what is wrong with them.

    `steps` are the steps of the other rules of the resulting rule set; `has_media` is true when an
    uploaded file goes with the rule. Returns (values ready for `Rule(**values)`, {field: reason}).
    """
    handlers = frozenset(known_handlers) if known_handlers is not None else known_handler_names()
    text = {name: as_text(raw.get(name)) for name in COLUMNS if name not in ("prioridad", "avanzar")}
    for name in ("step", "input_text", "tipo", "siguiente_step", "rol_keyword", "handler", "media_url", "opciones"):
        text[name] = text[name].strip()
    errors: dict[str, str] = {}
    for name, limit in MAX_LENGTHS.items():
        if len(text[name]) > limit:
            errors[name] = f"admite hasta {limit} caracteres (tiene {len(text[name])})"
    values = {name: text[name] or None for name in ("opciones", "siguiente_step", "rol_keyword", "handler",
                                                     "calculo", "media_url")}
    values.update(step=text["step"], input_text=text["input_text"], respuesta=text["respuesta"],
                  tipo=text["tipo"].lower() or "texto", prioridad=parse_priority(raw.get("prioridad")),
                  avanzar=parse_yes_no(raw.get("avanzar")))
    if not values["step"]:
        errors["step"] = "falta el nombre del paso"
    if not values["input_text"]:
        errors["input_text"] = "escriba las entradas aceptadas separadas por comas, o * para cualquier mensaje"
    elif values["input_text"] != WILDCARD:
        parts = [part.strip() for part in values["input_text"].split(",")]
        if WILDCARD in parts:
            errors["input_text"] = "use * solo, sin otras entradas: es la respuesta por defecto del paso"
        elif not any(normalize(part) for part in parts):
            errors["input_text"] = "ninguna entrada tiene letras o números; los signos y emojis se ignoran al comparar"
    if values["tipo"] not in RULE_TYPES:
        errors["tipo"] = f"{values['tipo']!r} no es un tipo; use {', '.join(RULE_TYPES)}"
    elif values["tipo"] in ("lista", "botones"):
        _check_options(values, errors)
    elif values["tipo"] in MEDIA_TYPES and not values["media_url"] and not has_media:
        errors.setdefault("media_url", f"el tipo {values['tipo']} necesita una URL (media_url) o un archivo subido")
    if values["media_url"] and "media_url" not in errors:
        if not is_web_url(values["media_url"]):
            errors["media_url"] = f"{values['media_url']!r} no es una URL http:// o https:// completa"
        elif has_media:
            errors["media_url"] = "indique una URL o un archivo, no ambos"
    if values["prioridad"] is None:
        errors["prioridad"] = f"debe ser un número entero entre 1 y {MAX_PRIORITY} (se leyó {raw.get('prioridad')!r})"
    if values["avanzar"] is None:
        errors["avanzar"] = f"debe ser si o no (se leyó {raw.get('avanzar')!r})"
    target = values["siguiente_step"]
    if target and "siguiente_step" not in errors and target != values["step"] and target not in set(steps):
        errors["siguiente_step"] = f"el paso {target!r} no existe: ninguna regla tiene ese step"
    if values["handler"] and "handler" not in errors and values["handler"] not in handlers:
        errors["handler"] = (f"{values['handler']!r} no es un handler registrado; use "
                             f"{', '.join(sorted(handlers)) or 'ninguno (no hay handlers)'}")
    return values, errors

