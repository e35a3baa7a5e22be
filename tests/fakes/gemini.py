"""A local HTTP server speaking Gemini's generateContent REST protocol, for tests.

Each request is recorded; the answer comes from a queue of scripted behaviours
("ok" with a JSON verdict, "error" with a status, "slow" sleeping past the client's timeout,
"malformed" with text that is not the JSON asked for), else from `default`.
"""
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def candidate_body(text: str) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21},
            "modelVersion": "gemini-2.5-flash"}


class FakeGemini:
    def __init__(self):
        self.requests = []
        self.script = deque()
        self.default = ("ok", {"label": "positivo", "score": 0.91})
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    kind, value = fake.script.popleft() if fake.script else fake.default
                if not self.path.split("?")[0].endswith(":generateContent"):
                    kind, value = "error", 404
                if kind == "slow":
                    time.sleep(value)
                    kind, value = fake.default
                if kind == "ok":
                    self._send(200, candidate_body(json.dumps(value)))
                elif kind == "malformed":
                    self._send(200, candidate_body(value))
                else:
                    self._send(value, {"error": {"code": value, "message": "Internal error encountered.",
                                                 "status": "INTERNAL" if value == 500 else "NOT_FOUND"}})

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeGemini":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def texts_asked(self) -> list[str]:
        return [part["text"] for r in self.requests for c in r["body"].get("contents", []) for part in c.get("parts", [])]
