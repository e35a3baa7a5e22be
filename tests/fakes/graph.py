"""A local HTTP server that speaks the Graph API's protocol, for tests.

Routes answer from a queue of scripted responses per (method, path) or from a default
handler; every request is recorded.
"""
import itertools
import json
import threading
import time
from collections import defaultdict, deque

from tests.fakes.server import LocalServer
from tests.shared import CORPUS

CORPUS_API = CORPUS / "meta" / "api"


class FakeGraph(LocalServer):
    def __init__(self):
        super().__init__()
        self.scripts = defaultdict(deque)
        self.files = {}
        self.down_until = 0.0
        self.ids = itertools.count(1)
        self.media_hang = 0.0
        self.released = threading.Event()
        self.held = 0

    def handle(self, request, body):
        if time.monotonic() < self.down_until:
            request.close_connection = True
            request.connection.close()
            return
        path = request.path.split("?", 1)[0]
        if self.media_hang and request.command == "GET" and self._is_media(path):
            self._hold()
        with self.lock:
            record = {"method": request.command, "path": request.path, "headers": dict(request.headers), "body": body}
            self.requests.append(record)
            script = self.scripts[(request.command, path)]
            response = script.popleft() if script else None
        status, payload, headers = response or self.default(request.command, path, record)
        self.respond(request, status, payload, headers)

    def script(self, method: str, path: str, *responses):
        """Queue responses `(status, json_or_bytes[, headers])` for the next calls of a route."""
        with self.lock:
            for response in responses:
                self.scripts[(method, path)].append(tuple(response) + (None,) * (3 - len(response)))

    def add_media(self, media_id: str, content: bytes, mime: str, sha256: str | None = None):
        """Serve a media object the way Graph does: `GET /{version}/{id}` → URL → bytes."""
        self.files[media_id] = (content, mime, sha256)

    def outage(self, seconds: float | None = None):
        """Drop every connection for a while (until `restore()` without `seconds`), as an unreachable Graph would."""
        self.down_until = float("inf") if seconds is None else time.monotonic() + seconds

    def restore(self):
        self.down_until = 0.0

    def hang_media(self, seconds: float):
        """Hold every media request (`GET /{version}/{media-id}` and its download) for `seconds` before
        answering, as a Graph that hangs would, until `release()`."""
        self.released.clear()
        self.media_hang = seconds

    def release(self):
        """Let the held media requests go on at once, and the next ones through without waiting."""
        self.media_hang = 0.0
        self.released.set()

    def holding(self) -> int:
        """How many media requests are being held right now."""
        with self.lock:
            return self.held

    def _is_media(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        return parts[0] == "download" or (len(parts) == 2 and parts[1] in self.files)

    def _hold(self):
        with self.lock:
            self.held += 1
        try:
            self.released.wait(self.media_hang)
        finally:
            with self.lock:
                self.held -= 1

    def sent(self) -> list[dict]:
        """JSON bodies of the messages posted to `/{version}/{phone-number-id}/messages` and accepted."""
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests
                    if r["method"] == "POST" and r["path"].endswith("/messages") and r.get("accepted")]

    def default(self, method, path, record):
        parts = path.strip("/").split("/")
        if method == "POST" and len(parts) == 3 and parts[2] == "messages":
            with self.lock:
                record["accepted"] = True
                return 200, {"messaging_product": "whatsapp", "contacts": [{"input": "x", "wa_id": "x"}],
                             "messages": [{"id": f"wamid.out.{next(self.ids)}"}]}, None
        if method == "GET" and len(parts) == 2 and parts[0] != "download" and parts[1] in self.files:
            content, mime, sha256 = self.files[parts[1]]
            info = {"messaging_product": "whatsapp", "url": f"{self.url}/download/{parts[1]}", "mime_type": mime,
                    "file_size": len(content), "id": parts[1]}
            if sha256:
                info["sha256"] = sha256
            return 200, info, None
        if method == "GET" and parts[0] == "download" and parts[-1] in self.files:
            content, mime, _ = self.files[parts[-1]]
            return 200, content, {"Content-Type": mime}
        return 404, {"error": {"message": "Unknown path", "type": "OAuthException", "code": 100}}, None

    def calls(self, method: str | None = None, prefix: str = "") -> list[dict]:
        with self.lock:
            return [r for r in self.requests if (method is None or r["method"] == method)
                    and r["path"].startswith(prefix)]


def corpus_api(name: str) -> dict:
    return json.loads((CORPUS_API / name).read_text())
