"""The app's JSON provider: requests read strictly (services.json_input), responses never carry NaN."""
from flask.json.provider import DefaultJSONProvider

from services import json_input


class StrictJSONProvider(DefaultJSONProvider):
    """`request.get_json()` refuses what `json_input.load` refuses (a ValueError: Flask answers 400, or None
    with `silent=True`); `jsonify` writes a non-finite float as null instead of a bare NaN."""

    def loads(self, s, **kwargs):
        return json_input.load(s)

    def dumps(self, obj, **kwargs):
        try:
            return super().dumps(obj, allow_nan=False, **kwargs)
        except ValueError:  # a NaN stored before input was checked: emitted as null
            return super().dumps(json_input.finite(obj), **kwargs)
