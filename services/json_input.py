"""JSON from outside (webhooks, the panel's and the simulator's requests), read strictly, and JSON we emit.

`load()` is the one reader of untrusted JSON: the body must be UTF-8 (Meta and every browser send it; a
UTF-16 or UTF-32 body, or UTF-8-encoded surrogates, is refused rather than guessed), every number finite
(`NaN`, `Infinity` and `1e999` are not JSON), and containers nested at most `MAX_DEPTH` deep (Meta's deepest
update is about a dozen levels; a body of 100,000 `[` would exhaust the interpreter's stack further on).
Anything else raises `JSONInputError` with a reason for a 400.

`finite()` is the other side: a value about to be emitted, with any non-finite float (stored before the
input was checked) as null, since a bare `NaN` breaks every JSON reader.
"""
import json
import math

MAX_DEPTH = 64


class JSONInputError(ValueError):
    """The body is not JSON this system accepts; the message says why (Spanish, for the 400)."""


def _no_constant(name: str):
    raise JSONInputError(f"número no finito ({name}): no es JSON válido")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(f"número fuera de rango ({text[:20]}): no es JSON válido")
    return value


def decode(raw: bytes | str) -> str:
    """The body as text: strict UTF-8 (a leading byte-order mark is allowed and dropped)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise JSONInputError(f"el cuerpo no es UTF-8 válido (byte {error.start})") from None


def load(raw: bytes | str):
    """The JSON value of `raw`, or JSONInputError (see the module)."""
    text = decode(raw)
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise JSONInputError(f"JSON anidado a más de {MAX_DEPTH} niveles") from None
    except JSONInputError:
        raise
    except ValueError as error:
        raise JSONInputError(f"el cuerpo no es JSON válido: {error}") from None
    check_depth(value)
    return value


def check_depth(value, limit: int = MAX_DEPTH) -> None:
    """Raise JSONInputError when containers nest deeper than `limit` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            raise JSONInputError(f"JSON anidado a más de {limit} niveles")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def finite(value):
    """`value` with every NaN or ±Infinity float replaced by None (containers copied only where one is found)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value
