"""A local HTTP server that serves media the way Twilio does, for tests.

`GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}` needs HTTP basic auth
(AccountSid, auth token) and answers 307 to a CDN URL on another host name (`localhost` instead of
`127.0.0.1`, the same server), which serves the bytes without auth. Every request is recorded.
"""
import base64
import threading
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeTwilio:
    def __init__(self, account_sid: str, token: str):
        self.account_sid, self.token = account_sid, token
        self.requests = []
        self.files = {}
        self.failures = defaultdict(deque)
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with fake.lock:
                    fake.requests.append({"path": self.path, "host": self.headers.get("Host"),
                                          "authorization": self.headers.get("Authorization")})
                    failures = fake.failures[self.path]
                    failure = failures.popleft() if failures else None
                status, body, headers = failure or fake.answer(self.path, self.headers.get("Authorization"))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

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
