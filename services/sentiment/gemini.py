"""Sentiment by Gemini, through Google's official SDK (`google-genai`).

One request per text, JSON out; anything but a well-formed answer raises `GeminiError`
so the caller falls back to the offline model.
"""
import json
from contextlib import nullcontext

from services.sentiment.offline import LABELS

PROMPT = ("Clasifica el sentimiento del mensaje de un cliente a una empresa por WhatsApp. "
          "Responde solo JSON {\"label\": \"positivo\"|\"neutral\"|\"negativo\", \"score\": número de 0 a 1 "
          "con tu confianza}. Saludos, números, opciones de menú y pedidos sin emoción son neutral.")


class GeminiError(RuntimeError):
    """Gemini did not give a usable answer (network, timeout, HTTP error, malformed JSON)."""


class GeminiSentiment:
    def __init__(self, api_key: str, model: str, base_url: str | None = None, timeout: float = 8.0, calls=None):
        """`calls`: the process's CallLimit for Gemini (services.outside), None for no bound."""
        from google import genai
        from google.genai import types
        self.model, self.types, self.calls = model, types, calls
        options = types.HttpOptions(timeout=int(timeout * 1000), retry_options=types.HttpRetryOptions(attempts=1),
                                    **({"base_url": base_url} if base_url else {}))
        self.client = genai.Client(api_key=api_key, http_options=options)
        self.config = types.GenerateContentConfig(
            system_instruction=PROMPT, temperature=0.0, response_mime_type="application/json",
            response_schema={"type": "OBJECT", "properties": {
                "label": {"type": "STRING", "enum": list(LABELS)}, "score": {"type": "NUMBER"}},
                "required": ["label", "score"]})

    def classify(self, text: str) -> tuple[str, float]:
        try:
            with self.calls.turn() if self.calls is not None else nullcontext():
                response = self.client.models.generate_content(model=self.model, contents=text, config=self.config)
            answer = response.text
        except Exception as error:  # the SDK's, httpx's and pydantic's errors, or no free turn: all mean "fall back"
            raise GeminiError(f"{type(error).__name__}: {str(error)[:200]}") from error
        try:
            data = json.loads(answer or "")
            label, score = data["label"], float(data["score"])
        except (ValueError, TypeError, KeyError) as error:
            raise GeminiError(f"respuesta de Gemini no válida: {str(answer)[:200]!r}") from error
        if label not in LABELS or not 0.0 <= score <= 1.0:
            raise GeminiError(f"respuesta de Gemini fuera de rango: {str(answer)[:200]!r}")
        return label, score
