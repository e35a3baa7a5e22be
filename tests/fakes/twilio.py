"""A local HTTP server that serves media the way Twilio does, for tests.

`GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}` needs HTTP basic auth
(AccountSid, auth token) and answers 307 to a CDN URL on another host name (`localhost` instead of
`127.0.0.1`, the same server), which serves the bytes without auth. Every request is recorded.
"""
import base64
from collections import defaultdict, deque

from tests.fakes.server import LocalServer


class FakeTwilio(LocalServer):
    def __init__(self, account_sid: str, token: str):
        super().__init__()
        self.account_sid, self.token = account_sid, token
        self.files = {}
        self.failures = defaultdict(deque)
        self.origin = self.url

    def handle(self, request, body):
        with self.lock:
            self.requests.append({"path": request.path, "host": request.headers.get("Host"),
                                  "authorization": request.headers.get("Authorization")})
            failures = self.failures[request.path]
            failure = failures.popleft() if failures else None
        status, payload, headers = failure or self.answer(request.path, request.headers.get("Authorization"))
        self.respond(request, status, payload, headers)

    def media_path(self, message_sid: str, media_sid: str) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"

    def add_media(self, message_sid: str, media_sid: str, content: bytes, mime: str) -> str:
        """Serve a media file; its Twilio URL."""
        self.files[media_sid] = (self.media_path(message_sid, media_sid), content, mime)
        return self.origin + self.media_path(message_sid, media_sid)

    def fail(self, path: str, *statuses: int):
        """The next requests of `path` answer these HTTP statuses."""
        with self.lock:
            self.failures[path].extend((status, b'{"message": "scripted failure"}', {}) for status in statuses)

    def answer(self, path: str, authorization: str | None) -> tuple[int, bytes, dict]:
        for media_sid, (media_path, content, mime) in self.files.items():
            if path == media_path:
                expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.token}".encode()).decode()
                if authorization != expected:
                    return 401, b'{"code": 20003, "message": "Authenticate"}', {}
                return 307, b"", {"Location": f"http://localhost:{self.port}/cdn/{media_sid}"}
            if path == f"/cdn/{media_sid}":
                return 200, content, {"Content-Type": mime}
        return 404, b'{"code": 20404, "message": "The requested resource was not found"}', {}

    def calls(self, prefix: str = "") -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(prefix)]
