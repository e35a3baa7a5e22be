"""The local HTTP server under every fake (Graph, Gemini, Twilio): 127.0.0.1, a free port, one thread per
connection, keep-alive. A fake subclasses it, records what it needs and answers in `handle`."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                fake.handle(self, self.rfile.read(length) if length else b"")

            do_GET = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        raise NotImplementedError

    def start(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def respond(request: BaseHTTPRequestHandler, status: int, payload, headers: dict | None = None) -> None:
        """Send `payload` (bytes as they are, anything else as JSON) with its length; a client that has gone
        away (a timeout the test provoked) is not an error."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        request.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        try:
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
