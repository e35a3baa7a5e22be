"""Custom handlers a rule can name in its `handler` column. Code can add more with `register_handler`."""
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from services.flow.commands import HANDOVER_TEXT
from services.flow.engine import Handler, HandlerResult, Turn

HANDLERS: dict[str, Handler] = {}


def register_handler(name: str):
    def decorator(function: Handler) -> Handler:
        HANDLERS[name] = function
        return function
    return decorator


def parse_parameters(calculo: str | None) -> dict[str, str]:
    """`precio_m2=350000; moneda=$` → {"precio_m2": "350000", "moneda": "$"}; a bare number is `precio_m2`."""
    params = {}
    for part in re.split(r"[;\n]", calculo or ""):
        if "=" in part:
            key, value = part.split("=", 1)
            params[key.strip().lower()] = value.strip()
        elif part.strip():
            params["precio_m2"] = part.strip()
    return params


_NUMBER = r"(\d+(?:[.,]\d+)?)"
_MEASURES = re.compile(_NUMBER + r"\s*(?:m|cm|mts?)?\s*(?:x|X|×|\*|por)\s*" + _NUMBER)


def to_meters(raw: str) -> Decimal:
    """'2.40' or '2,40' → 2.40 m; whole numbers over 10 are centimetres ('240' → 2.40 m)."""
    value = Decimal(raw.replace(",", "."))
    return value / 100 if value > 10 and "." not in raw and "," not in raw else value


def format_money(amount: Decimal, currency: str) -> str:
    whole = amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return f"{currency}{whole:,.0f}".replace(",", ".")


@register_handler("meson")
def countertop_quote(turn: Turn) -> HandlerResult:
    """Quote a countertop from measurements like `2.40 x 0.60` or `240x60` and the price per m² in `calculo`."""
    params = parse_parameters(turn.parameter)
    match = _MEASURES.search(turn.text)
    if not match:
        return HandlerResult("Envíame las medidas como largo x ancho, por ejemplo *2.40 x 0.60* (metros) "
                             "o *240x60* (centímetros).", stay=True)
    try:
        length, width = to_meters(match.group(1)), to_meters(match.group(2))
        price = Decimal(params.get("precio_m2", "0").replace(",", "."))
    except InvalidOperation:
        return HandlerResult("No pude leer esas medidas; prueba con *2.40 x 0.60*.", stay=True)
    if length <= 0 or width <= 0 or length > 20 or width > 20:
        return HandlerResult("Esas medidas no parecen de un mesón; prueba con *2.40 x 0.60*.", stay=True)
    area = (length * width).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    currency = params.get("moneda", "$")
    return HandlerResult(f"Mesón de {length.normalize():f} m x {width.normalize():f} m = {area} m².\n"
                         f"Precio estimado: {format_money(area * price, currency)} "
                         f"({format_money(price, currency)} por m²).")


@register_handler("asesor")
def hand_over(turn: Turn) -> HandlerResult:
    """Hand the chat to a human agent; the bot stays quiet until it is handed back."""
    return HandlerResult(None if turn.rule and turn.rule.respuesta else HANDOVER_TEXT, handover=True)
