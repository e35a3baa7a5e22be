"""A local HTTP server speaking Gemini's generateContent REST protocol, for tests.

Each request is recorded; the answer comes from a queue of scripted behaviours
("ok" with a JSON verdict, "error" with a status, "slow" sleeping past the client's timeout,
"malformed" with text that is not the JSON asked for), else from `default`.
"""
import json
import time
from collections import deque

from tests.fakes.server import LocalServer


def candidate_body(text: str) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21},
            "modelVersion": "gemini-2.5-flash"}


class FakeGemini(LocalServer):
    def __init__(self):
        super().__init__()
        self.script = deque()
        self.default = ("ok", {"label": "positivo", "score": 0.91})

    def handle(self, request, body):
        with self.lock:
            self.requests.append({"path": request.path, "headers": dict(request.headers),
                                  "body": json.loads(body or b"{}")})
            kind, value = self.script.popleft() if self.script else self.default
        if not request.path.split("?")[0].endswith(":generateContent"):
            kind, value = "error", 404
        if kind == "slow":
            time.sleep(value)
            kind, value = self.default
        json_utf8 = {"Content-Type": "application/json; charset=UTF-8"}
        if kind in ("ok", "malformed"):
            self.respond(request, 200, candidate_body(json.dumps(value) if kind == "ok" else value), json_utf8)
        else:
            self.respond(request, value, {"error": {"code": value, "message": "Internal error encountered.",
                                                    "status": "INTERNAL" if value == 500 else "NOT_FOUND"}}, json_utf8)

    def texts_asked(self) -> list[str]:
        return [part["text"] for r in self.requests for c in r["body"].get("contents", []) for part in c.get("parts", [])]
