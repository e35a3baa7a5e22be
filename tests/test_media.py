"""Customers' media: `GET /{media-id}` → URL → download with the bearer token into MEDIA_ROOT, with
type, size and checksum checked and retries on what may pass (DESIGN §3)."""
import contextlib
import hashlib
import json
import socket
import threading
import time

from sqlalchemy import select

from extensions import db
from models import Message
from tests.concurrency import post_signed, serve
from tests.conftest import CORPUS, post_webhook, text_payload, wait_for_jobs

IMAGE_WEBHOOK = CORPUS / "meta" / "webhooks" / "image__pywa.json"
WAMID = "wamid.xyzxyz"
MEDIA_ID = json.loads(IMAGE_WEBHOOK.read_text())["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["id"]
INFO_PATH = f"/v25.0/{MEDIA_ID}"
DOWNLOAD_PATH = f"/download/{MEDIA_ID}"
MB = 1024 * 1024
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 800 + b"\xff\xd9"  # ~200 KB: several chunks


def receive_image(app) -> Message:
    """Post the corpus image webhook, signed; once the jobs are done, the message as stored."""
    assert post_webhook(app.test_client(), IMAGE_WEBHOOK.read_bytes()).status_code == 200
    wait_for_jobs(app)
    with app.app_context():
        message = db.session.scalar(select(Message).filter_by(wamid=WAMID))
        db.session.expunge(message)
    return message


def files_under(root) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def info(graph, **fields) -> tuple:
    return 200, {"messaging_product": "whatsapp", "url": f"{graph.url}{DOWNLOAD_PATH}", "mime_type": "image/jpeg",
                 "file_size": len(JPEG), "id": MEDIA_ID, **fields}


def bearer(call) -> str | None:
    return {name.lower(): value for name, value in call["headers"].items()}.get("authorization")


def test_corpus_media_id_is_the_one_asked_for():
    assert MEDIA_ID == "65463453"


def test_image_is_downloaded_with_the_bearer_token_and_kept_under_media_root(make_app, graph, media_root):
    app = make_app()
    graph.add_media(MEDIA_ID, JPEG, "image/jpeg", sha256=hashlib.sha256(JPEG).hexdigest())

    message = receive_image(app)

    assert (message.media_status, message.media_error) == ("ok", None)
    assert message.media_size == len(JPEG) and message.media_mime == "image/jpeg"
    assert not message.media_path.startswith("/") and ".." not in message.media_path
    assert message.media_path.endswith(".jpg")
    assert (media_root / message.media_path).read_bytes() == JPEG
    assert files_under(media_root) == [message.media_path], "no .part file may be left behind"
    info_calls, downloads = graph.calls("GET", INFO_PATH), graph.calls("GET", DOWNLOAD_PATH)
    assert len(info_calls) == 1 and len(downloads) == 1
    assert info_calls[0]["path"].split("?")[0] == "/v25.0/65463453"
    assert bearer(info_calls[0]) == bearer(downloads[0]) == "Bearer test-token"


def test_graph_500_twice_then_ok_is_stored(make_app, graph, media_root):
    app = make_app()
    graph.add_media(MEDIA_ID, JPEG, "image/jpeg")
    error = {"error": {"message": "An unexpected error has occurred. Please retry your request later.",
                       "type": "OAuthException", "is_transient": True, "code": 2, "fbtrace_id": "Az8"}}
    graph.script("GET", INFO_PATH, (500, error), (500, error))

    message = receive_image(app)

    assert message.media_status == "ok" and (media_root / message.media_path).read_bytes() == JPEG
    assert len(graph.calls("GET", INFO_PATH)) == 3 and len(graph.calls("GET", DOWNLOAD_PATH)) == 1


def test_expired_download_url_is_asked_for_again(make_app, graph, media_root):
    app = make_app()
    graph.add_media(MEDIA_ID, JPEG, "image/jpeg")
    graph.script("GET", DOWNLOAD_PATH, (404, b"URL signature expired", {"Content-Type": "text/plain"}))

    message = receive_image(app)

    assert message.media_status == "ok" and message.media_size == len(JPEG)
    assert (media_root / message.media_path).read_bytes() == JPEG
    assert len(graph.calls("GET", INFO_PATH)) == 2 and len(graph.calls("GET", DOWNLOAD_PATH)) == 2


def test_declared_size_over_the_image_limit_is_refused_without_downloading(make_app, graph, media_root):
    app = make_app()
    graph.add_media(MEDIA_ID, JPEG, "image/jpeg")
    graph.script("GET", INFO_PATH, info(graph, file_size=5 * MB + 1))

    message = receive_image(app)

    assert message.media_status == "failed" and message.media_path is None
    assert "demasiado grande" in message.media_error and str(5 * MB) in message.media_error
    assert graph.calls("GET", DOWNLOAD_PATH) == []
    assert files_under(media_root) == []


def test_wrong_mime_for_an_image_is_refused(make_app, graph, media_root):
    app = make_app()
    graph.add_media(MEDIA_ID, b"MZ\x90\x00" + b"\x00" * 1000, "application/x-msdownload")

    message = receive_image(app)

    assert message.media_status == "failed"
    assert "no admitido" in message.media_error and "application/x-msdownload" in message.media_error
    assert graph.calls("GET", DOWNLOAD_PATH) == []
    assert files_under(media_root) == []


def test_body_over_the_limit_when_the_declared_size_lies_leaves_no_partial_file(make_app, graph, media_root):
    app = make_app()
    graph.add_media(MEDIA_ID, b"\xff\xd8" + b"\x00" * (5 * MB), "image/jpeg")
    graph.script("GET", INFO_PATH, info(graph, file_size=2048))

    message = receive_image(app)

    assert message.media_status == "failed" and message.media_size is None and message.media_path is None
    assert "demasiado grande" in message.media_error
    assert files_under(media_root) == [], "the partial download must be removed"


def test_invalid_token_is_a_permanent_failure_without_retries(make_app, graph, media_root):
    app = make_app(MEDIA_RETRY_DELAYS=(2, 2))
    graph.add_media(MEDIA_ID, JPEG, "image/jpeg")
    graph.script("GET", INFO_PATH, (401, {"error": {
        "message": "Error validating access token: Session has expired on Friday, 01-Jan-21 00:00:00 PST.",
        "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "A1b2"}}))

    started = time.monotonic()
    message = receive_image(app)

    assert time.monotonic() - started < 1.9, "a permanent error must not wait for retries"
    assert message.media_status == "failed"
    assert message.media_error.startswith("no se pudo descargar")
    assert "Error validating access token" in message.media_error
    assert len(graph.calls("GET", INFO_PATH)) == 1 and graph.calls("GET", DOWNLOAD_PATH) == []
    assert files_under(media_root) == []


def test_unreachable_graph_fails_after_the_retries_with_a_reason(make_app, media_root):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app = make_app(GRAPH_API_URL=f"http://127.0.0.1:{closed_port}")

    message = receive_image(app)

    assert message.media_status == "failed"
    assert "no responde" in message.media_error
    assert files_under(media_root) == []


@contextlib.contextmanager
def cut_off_download(content: bytes):
    """A download URL whose server promises all of `content`, sends half and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len(content)}\r\n\r\n"
                connection.sendall(head.encode() + content[:len(content) // 2])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/cut/{MEDIA_ID}"
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def test_download_cut_off_midway_is_tried_again(make_app, graph, media_root):
    app = make_app()
    graph.add_media(MEDIA_ID, JPEG, "image/jpeg")
    with cut_off_download(JPEG) as url:
        graph.script("GET", INFO_PATH, info(graph, url=url))
        message = receive_image(app)

    assert message.media_status == "ok" and (media_root / message.media_path).read_bytes() == JPEG
    assert files_under(media_root) == [message.media_path]
    assert len(graph.calls("GET", INFO_PATH)) == 2


def test_download_always_cut_off_fails_with_a_reason_and_no_partial_file(make_app, graph, media_root):
    app = make_app()
    with cut_off_download(JPEG) as url:
        graph.script("GET", INFO_PATH, *[info(graph, url=url)] * 4)  # the first try and its 3 retries
        message = receive_image(app)

    assert message.media_status == "failed", "the message must not stay pending without a reason"
    assert "interrumpida" in message.media_error
    assert len(graph.calls("GET", INFO_PATH)) == 4
    assert files_under(media_root) == []


def test_sha256_mismatch_is_refused_and_the_file_removed(make_app, graph, media_root):
    app = make_app()
    graph.add_media(MEDIA_ID, JPEG, "image/jpeg", sha256=hashlib.sha256(b"otro archivo").hexdigest())

    message = receive_image(app)

    assert message.media_status == "failed" and message.media_path is None
    assert "sha256" in message.media_error
    assert files_under(media_root) == []


def test_webhooks_are_answered_while_a_download_waits_to_retry(make_app, graph):
    """The download job must not keep the database busy while it waits for Graph."""
    app = make_app(MEDIA_RETRY_DELAYS=(2.0,))
    graph.add_media(MEDIA_ID, JPEG, "image/jpeg")
    graph.script("GET", INFO_PATH, (503, {"error": {"message": "Service temporarily unavailable", "code": 2}}))

    with serve(app) as url:
        assert post_signed(url, IMAGE_WEBHOOK.read_bytes()).status_code == 200
        deadline = time.monotonic() + 5
        while not graph.calls("GET", INFO_PATH) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the job is now waiting to try again
        timings = []

        def post(i):
            started = time.monotonic()
            body = json.dumps(text_payload(f"wamid.DURING{i}", numero="5215500009999", body=f"¿ya? {i}")).encode()
            assert post_signed(url, body).status_code == 200
            timings.append(time.monotonic() - started)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_for_jobs(app)

    assert len(timings) == 3 and max(timings) < 1.0, f"webhooks waited for the media job: {timings}"
    with app.app_context():
        assert db.session.scalar(select(Message).filter_by(wamid=WAMID)).media_status == "ok"
