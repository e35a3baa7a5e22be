"""Sentiment: the offline model, the Gemini provider against a fake server, the cache, the job, export and CLI."""
import json

import pytest

from extensions import db
from models import Chat, Message
from services.sentiment import SentimentClassifier, make_classifier, neutral_by_rule
from services.sentiment.gemini import GeminiSentiment
from tests.conftest import post_webhook, text_payload, wait_for_jobs
from tests.fakes.gemini import FakeGemini


@pytest.fixture
def local():
    return SentimentClassifier("local")


@pytest.fixture
def gemini_server():
    fake = FakeGemini().start()
    yield fake
    fake.stop()


@pytest.fixture
def gemini(gemini_server):
    return SentimentClassifier("auto", GeminiSentiment("clave", "gemini-2.5-flash", gemini_server.url, timeout=1.0))


@pytest.mark.parametrize("text,label", [
    ("Excelente atención, muchas gracias, todo perfecto 😍", "positivo"),
    ("Me encanta, son geniales", "positivo"),
    ("Es una estafa, nunca llegó mi pedido y nadie responde 😡", "negativo"),
    ("Pésimo servicio, estoy muy molesto", "negativo"),
    ("This is great, I love it, works perfectly", "positivo"),
    ("Terrible product, it broke after two days, total waste of money", "negativo"),
    ("Quiero saber el horario de la tienda", "neutral"),
    ("Where is my order?", "neutral"),
])
def test_offline_model_reads_clear_feelings(local, text, label):
    result = local.classify(text)
    assert result.label == label, (text, result)
    assert 0.0 <= result.score <= 1.0 and result.provider == "local"


@pytest.mark.parametrize("text", ["hola", "Hola!", "1", " 2 ", "si", "Sí", "menu", "Menú", "buenos días", "ok", "opción 3"])
def test_greetings_numbers_and_menu_choices_are_neutral(local, text):
    assert neutral_by_rule(text)
    assert local.classify(text).label == "neutral"


def test_negation_turns_a_positive_word(local):
    assert local.classify("me gusta mucho").label == "positivo"
    assert local.classify("no me gusta nada, no sirve").label == "negativo"


def test_no_text_or_off_gives_nothing(local):
    assert local.classify("") is None and local.classify("   ") is None
    assert SentimentClassifier("off").classify("me encanta") is None


def test_cache_by_normalised_text(local):
    first = local.classify("¡Qué servicio tan malo!")
    again = local.classify("que servicio tan   MALO")
    assert again is first and local.cache.hits == 1 and len(local.cache) == 1
    assert local.classify("qué bueno 😍").label != local.classify("qué bueno 😡").label or len(local.cache) == 3


def test_cache_is_bounded():
    small = SentimentClassifier("local", cache_size=3)
    for n in range(10):
        small.classify(f"me encanta el producto número {n}")
    assert len(small.cache) == 3


def test_gemini_answer_is_used(gemini, gemini_server):
    gemini_server.default = ("ok", {"label": "negativo", "score": 0.83})
    result = gemini.classify("el repartidor fue amable")
    assert (result.label, result.score, result.provider) == ("negativo", 0.83, "gemini")
    request = gemini_server.requests[0]
    assert request["path"].endswith("/models/gemini-2.5-flash:generateContent")
    assert {k.lower(): v for k, v in request["headers"].items()}["x-goog-api-key"] == "clave"
    assert gemini_server.texts_asked() == ["el repartidor fue amable"]
    assert gemini.classify("El repartidor fue amable.") is result and len(gemini_server.requests) == 1


def test_greeting_never_reaches_gemini(gemini, gemini_server):
    assert gemini.classify("hola").label == "neutral"
    assert gemini_server.requests == []


@pytest.mark.parametrize("behaviour", [("slow", 3.0), ("error", 500), ("malformed", "positivo, seguro"),
                                       ("ok", {"label": "feliz", "score": 0.9}), ("ok", {"label": "positivo", "score": 7})])
def test_gemini_failures_fall_back_to_the_offline_model(gemini, gemini_server, behaviour):
    gemini_server.script.append(behaviour)
    result = gemini.classify("Pésimo servicio, una estafa, estoy furioso 😡")
    assert (result.label, result.provider) == ("negativo", "local")
    assert len(gemini_server.requests) == 1 and gemini.gemini_failures == 1
    assert gemini.status()["last_error"] and "modelo local" in gemini.status()["reason"]
    gemini_server.default = ("ok", {"label": "neutral", "score": 0.6})
    assert gemini.classify("el paquete llegó el martes").provider == "gemini"
    assert "reason" not in gemini.status()


def test_provider_choice_from_settings(gemini_server):
    base = {"GEMINI_MODEL": "m", "GEMINI_API_URL": gemini_server.url, "GEMINI_TIMEOUT_SEC": 1.0}
    assert make_classifier({**base, "SENTIMENT_PROVIDER": "auto", "GEMINI_API_KEY": None}).provider == "local"
    assert make_classifier({**base, "SENTIMENT_PROVIDER": "auto", "GEMINI_API_KEY": "k"}).provider == "gemini"
    assert make_classifier({**base, "SENTIMENT_PROVIDER": "local", "GEMINI_API_KEY": "k"}).provider == "local"
    assert make_classifier({**base, "SENTIMENT_PROVIDER": "off", "GEMINI_API_KEY": "k"}).provider == "off"
    missing = make_classifier({**base, "SENTIMENT_PROVIDER": "gemini", "GEMINI_API_KEY": None})
    assert missing.status()["ok"] is False and "GEMINI_API_KEY" in missing.status()["reason"]
    assert missing.classify("una estafa, pésimo 😡").provider == "local"


def _messages(app, numero="5215512345678"):
    with app.app_context():
        chat = db.session.query(Chat).filter_by(numero=numero).one()
        rows = db.session.query(Message).filter_by(chat_id=chat.id, direction="in").order_by(Message.id).all()
        return chat.last_sentiment, [(m.text, m.sentiment_label, m.sentiment_score) for m in rows]


def test_webhook_text_is_tagged_when_stored(app, client):
    """The offline model tags a text in the drain's transaction: the panel's one event finds it tagged."""
    broker = app.extensions["events"]
    subscription = broker.subscribe()
    body = json.dumps(text_payload("wamid.S1", body="Pésimo servicio, es una estafa 😡")).encode()
    assert post_webhook(client, body).status_code == 200
    wait_for_jobs(app)
    last, rows = _messages(app)
    assert rows[0][1] == "negativo" and 0 < rows[0][2] <= 1 and last == "negativo"
    events = []
    while (item := subscription.get(0.2)) is not None:
        events.append(item)
    subscription.close()
    assert [e["type"] for e in events if e["type"] != "message_update"] == ["message"]
    body = json.dumps(text_payload("wamid.S2", body="hola", timestamp=1700000100)).encode()
    assert post_webhook(client, body).status_code == 200
    wait_for_jobs(app)
    last, rows = _messages(app)
    assert [r[1] for r in rows] == ["negativo", "neutral"] and last == "neutral"


def test_an_edited_message_is_tagged_again_with_its_new_text(app, client):
    body = json.dumps(text_payload("wamid.E1", body="Excelente servicio, muchas gracias")).encode()
    assert post_webhook(client, body).status_code == 200
    wait_for_jobs(app)
    assert _messages(app)[1][0][:2] == ("Excelente servicio, muchas gracias", "positivo")
    edit = text_payload("wamid.E2", body="x", timestamp=1700000100)
    message = edit["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message.update(type="edit", edit={"original_message_id": "wamid.E1", "message": {
        "type": "text", "text": {"body": "Pésimo servicio, es una estafa"}}})
    assert post_webhook(client, json.dumps(edit).encode()).status_code == 200
    wait_for_jobs(app)
    original, edit_row = _messages(app)[1]
    assert original[:2] == ("Pésimo servicio, es una estafa", "negativo")
    assert edit_row[1] is None  # the edit row itself is not counted as another opinion


def test_webhook_uses_gemini_when_configured(make_app, gemini_server):
    app = make_app(GEMINI_API_KEY="clave", GEMINI_API_URL=gemini_server.url, GEMINI_TIMEOUT_SEC=1.0)
    gemini_server.default = ("ok", {"label": "positivo", "score": 0.77})
    body = json.dumps(text_payload("wamid.G1", body="el pedido llegó hoy")).encode()
    assert post_webhook(app.test_client(), body).status_code == 200
    wait_for_jobs(app)
    assert _messages(app)[1][0][1:] == ("positivo", 0.77)
    assert "el pedido llegó hoy" in gemini_server.texts_asked()


def test_job_tags_a_transcription_when_there_is_no_text(app):
    from services.inbound import find_or_create_chat
    from services.sentiment import tag_message
    with app.app_context():
        chat = find_or_create_chat("5215500000001")
        message = Message(chat_id=chat.id, direction="in", sender="customer", type="audio", status="received",
                          transcription="estoy muy contento, excelente servicio, gracias", attempts=0)
        db.session.add(message)
        db.session.commit()
        tag_message(message.id)
        db.session.expire_all()
        assert db.session.get(Message, message.id).sentiment_label == "positivo"
        assert db.session.get(Chat, chat.id).last_sentiment == "positivo"


def test_off_tags_nothing(make_app):
    app = make_app(SENTIMENT_PROVIDER="off")
    body = json.dumps(text_payload("wamid.O1", body="una estafa 😡")).encode()
    assert post_webhook(app.test_client(), body).status_code == 200
    wait_for_jobs(app)
    assert _messages(app) == (None, [("una estafa 😡", None, None)])


def test_export_json_carries_sentiment(app, client):
    from services.exports import message_record
    body = json.dumps(text_payload("wamid.E1", body="Me encanta, excelente atención 😍")).encode()
    post_webhook(client, body)
    wait_for_jobs(app)
    with app.app_context():
        messages = db.session.query(Message).order_by(Message.id).all()
        records = [message_record(m) for m in messages]
    tagged = [r for r in records if r["wamid"] == "wamid.E1"][0]
    assert tagged["sentiment"]["label"] == "positivo" and 0 < tagged["sentiment"]["score"] <= 1
    assert all(r["sentiment"] is None for r in records if r["direction"] == "out")


def test_status_tells_the_provider(app, make_app, gemini_server):
    with app.test_request_context():
        from services.status import dependency_status
        assert dependency_status()["sentiment"]["provider"] == "local"
        assert dependency_status()["sentiment"]["ok"] is True
    configured = make_app(GEMINI_API_KEY="k", GEMINI_API_URL=gemini_server.url)
    with configured.test_request_context():
        report = dependency_status()["sentiment"]
        assert report["provider"] == "gemini" and report["model"] == "gemini-2.5-flash"


def test_cli_classify_reads_lines(runner):
    result = runner.invoke(args=["sentiment", "classify"],
                           input="hola\nPésimo servicio, una estafa 😡\nMe encanta, excelente atención 😍\n\n")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["label"] for line in lines] == ["neutral", "negativo", "positivo", None]
    assert all(0 <= line["score"] <= 1 for line in lines[:3])


def test_shipped_model_never_saw_the_held_out_rows():
    from services.sentiment import offline_model
    from services.sentiment.dataset import load_all, load_extra, split
    training, held_out = split(load_all())
    extra_training, extra_held_out = split(load_extra())
    assert offline_model().meta["trained_on"] == "train split"
    assert offline_model().meta["examples"] == len(training) + len(extra_training)
    assert extra_training and extra_held_out and all(e.extra for e in extra_training)
    assert not {e.group for e in extra_training} & {e.group for e in extra_held_out}
    assert not {e.text for e in extra_training} & {e.text for e in held_out}
    assert not {e.text for e in training} & {e.text for e in held_out if e.language == "es"}
    assert not {e.group for e in training if e.language == "en"} & {e.group for e in held_out if e.language == "en"}


def test_training_script_builds_a_working_model(tmp_path):
    import scripts.train_sentiment as training
    from services.sentiment.offline import OfflineModel
    out = tmp_path / "model.json.gz"
    assert training.main(["--out", str(out)]) == 0
    model = OfflineModel.load(out)
    assert model.classify("Excelente servicio, muchas gracias 😍")[0] == "positivo"
    assert model.classify("Pésimo, una estafa, nadie responde 😡")[0] == "negativo"


def test_two_word_lexicon_entries_and_negation():
    from services.sentiment.offline import Lexicon, read_lexicon, tokens
    lexicon = Lexicon(read_lexicon())
    assert lexicon.scores(tokens("no sirve")) == (0.0, 2.5)
    assert lexicon.scores(tokens("me gusta"))[0] > 0 and lexicon.scores(tokens("no me gusta"))[1] > 0
    assert lexicon.scores(tokens("Miles Davis &lt;3"))[0] > 0


def test_public_lexicon_reads_english_and_spanish_words():
    from services.sentiment.dataset import load_public_lexicon
    from services.sentiment.offline import Lexicon, tokens
    lexicon = Lexicon(load_public_lexicon())
    assert lexicon.scores(tokens("a horrible, useless thing"))[1] > 0
    assert lexicon.scores(tokens("good value, I love it"))[0] > 0
    assert lexicon.scores(tokens("qué día tan aburrido"))[1] > 0
    assert lexicon.scores(tokens("un abrazo, estoy agradecido"))[0] > 0
