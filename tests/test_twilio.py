"""Twilio's WhatsApp webhook (DESIGN §3): signed form posts journaled raw and fed to the same pipeline,
statuses moving outbound messages forward, media fetched with basic auth from an allowed host only."""
import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Chat, Message, MessageStatusEvent, WebhookEvent
from services import twilio_payload
from services.demo_flow import seed_demo_flow
from services.inbound import find_or_create_chat
from services.signatures import twilio_signature
from tests.conftest import CORPUS, wait_for_jobs
from tests.fakes.twilio import FakeTwilio

TWILIO = CORPUS / "twilio"
FORMS = sorted(TWILIO.glob("*.form"))
VECTORS = json.loads((TWILIO / "signature_test_vectors.json").read_text())["vectors"]
TOKEN = "twilio-token"
ACCOUNT = "AC1a03647d811fab342c0ad608e382fab2"
URL = "http://localhost/webhook/twilio"  # what Flask's test client requests
NUMERO = "31612345678"
SENT_SID, DELIVERED_SID = "SM0cec4ed334e74bcbb64eb8b6684e9654", "SMdf55df64a2ff4920bb0748193cfbb640"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 400 + b"\xff\xd9"


def sign(token: str, url: str, body: str) -> str:
    """The vectors' algorithm, written here apart from services.signatures: the URL, then every field's
    name and value by sorted name (values of a repeated name sorted), HMAC-SHA1, base64."""
    pairs = sorted(parse_qsl(body, keep_blank_values=True))
    message = url + "".join(name + value for name, value in pairs)
    return base64.b64encode(hmac.new(token.encode(), message.encode(), hashlib.sha1).digest()).decode()


def post_form(client, body: str, url: str = URL, token: str | None = TOKEN, path: str = "/webhook/twilio", **headers):
    if token:
        headers.setdefault("X-Twilio-Signature", sign(token, url, body))
    return client.post(path, data=body.encode(), headers=headers, content_type="application/x-www-form-urlencoded")


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def form(**fields) -> str:
    base = {"SmsMessageSid": "SMtest0001", "NumMedia": "0", "SmsSid": "SMtest0001", "SmsStatus": "received",
            "Body": "hola", "To": "whatsapp:+14123456789", "MessageSid": "SMtest0001", "AccountSid": ACCOUNT,
            "From": f"whatsapp:+{NUMERO}", "ApiVersion": "2010-04-01"}
    base.update(fields)
    return urlencode({k: v for k, v in base.items() if v is not None})


@pytest.fixture
def twilio_app(make_app):
    return make_app(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_MEDIA_HOSTS=("http://127.0.0.1:9",))


@pytest.fixture
def fake_twilio():
    fake = FakeTwilio(ACCOUNT, TOKEN).start()
    yield fake
    fake.stop()


def seed_outbound(app, wamid: str, status: str) -> None:
    with app.app_context():
        chat = find_or_create_chat(NUMERO)
        db.session.flush()
        db.session.add(Message(chat_id=chat.id, wamid=wamid, direction="out", sender="agent", type="text",
                               text="enviado por Twilio", status=status, attempts=1))
        db.session.commit()


# --- signatures -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["expected"])
def test_signature_vectors(vector):
    params = {name: [value] for name, value in vector["params"].items()}
    assert twilio_signature(vector["auth_token"], vector["url"], params) == vector["expected"]
    assert sign(vector["auth_token"], vector["url"], urlencode(vector["params"])) == vector["expected"]
    assert twilio_payload.valid_signature(vector["auth_token"], [vector["url"]], params, vector["expected"])
    if "body" in vector:  # the JSON variant: the URL carries the body's hash, the fields are empty
        assert f"bodySHA256={hashlib.sha256(vector['body'].encode()).hexdigest()}" in vector["url"]


def test_signature_is_accepted_with_and_without_the_default_port_and_refused_when_anything_changes():
    first, with_port = VECTORS[0], VECTORS[1]
    params = {name: [value] for name, value in first["params"].items()}
    assert twilio_payload.valid_signature("12345", [with_port["url"]], params, first["expected"])
    assert twilio_payload.valid_signature("12345", [first["url"]], params, with_port["expected"])
    assert not twilio_payload.valid_signature("12346", [first["url"]], params, first["expected"])
    assert not twilio_payload.valid_signature("12345", [first["url"] + "&x=1"], params, first["expected"])
    assert not twilio_payload.valid_signature("12345", [first["url"]], {**params, "Digits": ["1235"]},
                                              first["expected"])
    assert not twilio_payload.valid_signature("12345", [first["url"]], params, None)
    assert not twilio_payload.valid_signature("12345", ["https://mycompany.com:8443/myapp.php?foo=1&bar=2"],
                                              params, first["expected"])


# --- the corpus, end to end -----------------------------------------------------------------------------

def test_every_corpus_form_posted_twice_is_stored_once_with_its_type_and_content(twilio_app):
    client = twilio_app.test_client()
    with twilio_app.app_context():
        seed_demo_flow()
        db.session.commit()
    seed_outbound(twilio_app, SENT_SID, "sending")
    seed_outbound(twilio_app, DELIVERED_SID, "sent")
    bodies = {path.name: path.read_bytes().decode() for path in FORMS}
    assert len(bodies) == 5
    for name, body in list(bodies.items()) * 2:
        response = post_form(client, body)
        assert response.status_code == 200, (name, response.get_data(as_text=True))
        assert response.mimetype == "text/xml" and response.get_data(as_text=True).endswith("<Response/>")
    wait_for_jobs(twilio_app)

    with twilio_app.app_context():
        events = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        assert [e.payload for e in events] == list(bodies.values()) * 2, "the raw body is journaled byte for byte"
        assert {e.source for e in events} == {"twilio"} and all(e.processed_at and not e.error for e in events)
        inbound = {m.wamid: m for m in db.session.scalars(select(Message).filter_by(direction="in"))}
        assert len(inbound) == 3
        chat = db.session.scalar(select(Chat).filter_by(numero=NUMERO))
        assert {m.chat_id for m in inbound.values()} == {chat.id}

        text = inbound["SM892512e202b34d4109b10a3893fa9640"]
        assert (text.type, text.text, text.sender, text.content_data) == ("text", "test", "customer", {})

        image = inbound["MM21151abfaadc1fb79b782f8460862a52"]
        assert (image.type, image.text, image.media_mime) == ("image", None, "image/jpeg")
        assert image.media_id == "twilio:ME5f0afa2336bd0f73ca553fb5a2e3150bc"
        assert image.content_data == {"account_sid": ACCOUNT, "media_url": (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM21151abfaadc1fb79b782f8460862a52"
            "/Media/ME5f0afa2336bd0f73ca553fb5a2e3150bc")}
        # api.twilio.com is not in this app's TWILIO_MEDIA_HOSTS: refused, never fetched
        assert image.media_status == "failed" and "TWILIO_MEDIA_HOSTS" in image.media_error

        location = inbound["SM9c871cd9649aa3829298e153ae6a8123"]
        assert (location.type, location.text) == ("location", "Microsoft")
        assert location.content_data == {"latitude": 52.303897857666016, "longitude": 4.750025749206543,
                                         "name": "Microsoft",
                                         "address": "Evert van de Beekstraat 354, Schiphol, North Holland 1118 CZ"}

        statuses = db.session.execute(select(MessageStatusEvent.wamid, MessageStatusEvent.status,
                                             MessageStatusEvent.recipient)).all()
        assert sorted(statuses) == [(SENT_SID, "sent", NUMERO), (DELIVERED_SID, "delivered", NUMERO)]
        assert db.session.scalar(select(Message.status).filter_by(wamid=SENT_SID)) == "sent"
        assert db.session.scalar(select(Message.status).filter_by(wamid=DELIVERED_SID)) == "delivered"

        replies = db.session.scalars(select(Message).where(
            Message.direction == "out", Message.sender == "bot", Message.chat_id == chat.id)).all()
        assert replies, "the bot answers the customer through the configured (sandbox) transport"
        assert all(m.processed_at is not None for m in inbound.values())


def test_failed_and_undelivered_callbacks_keep_the_error(twilio_app):
    client = twilio_app.test_client()
    seed_outbound(twilio_app, "SMfailed01", "sent")
    seed_outbound(twilio_app, "SMundeliv1", "delivered")
    failed = form(MessageSid="SMfailed01", SmsSid="SMfailed01", SmsMessageSid=None, MessageStatus="failed",
                  SmsStatus="failed", ErrorCode="63016", ErrorMessage="Outside the allowed window", Body=None,
                  From="whatsapp:+14123456789", To=f"whatsapp:+{NUMERO}")
    undelivered = form(MessageSid="SMundeliv1", SmsSid="SMundeliv1", SmsMessageSid=None, MessageStatus="undelivered",
                       SmsStatus="undelivered", ErrorCode="30008", Body=None, From="whatsapp:+14123456789",
                       To=f"whatsapp:+{NUMERO}")
    for body in (failed, undelivered):
        assert post_form(client, body).status_code == 200
    wait_for_jobs(twilio_app)
    with twilio_app.app_context():
        rows = {m.wamid: m for m in db.session.scalars(select(Message).filter_by(direction="out"))}
        assert (rows["SMfailed01"].status, rows["SMfailed01"].error_code, rows["SMfailed01"].error_title) == \
            ("failed", 63016, "Outside the allowed window")
        assert (rows["SMundeliv1"].status, rows["SMundeliv1"].error_code) == ("failed", 30008)
    assert count(twilio_app, Message, Message.direction == "in") == 0


# --- refusals -------------------------------------------------------------------------------------------

def test_bad_or_missing_signature_is_401_and_nothing_is_stored(twilio_app):
    client = twilio_app.test_client()
    body = (TWILIO / "inbound_whatsapp_text__botbuilder-community.form").read_text()
    assert post_form(client, body, token=None).status_code == 401
    assert post_form(client, body, token="another-token").status_code == 401
    assert post_form(client, body, url="http://localhost/webhook").status_code == 401
    assert post_form(client, body, **{"X-Twilio-Signature": sign(TOKEN, URL, body)[:-2] + "A="}).status_code == 401
    tampered = client.post("/webhook/twilio", data=body.replace("Body=test", "Body=pwned").encode(),
                           headers={"X-Twilio-Signature": sign(TOKEN, URL, body)},
                           content_type="application/x-www-form-urlencoded")
    assert tampered.status_code == 401
    assert count(twilio_app, WebhookEvent) == 0 and count(twilio_app, Message) == 0


def test_signature_counts_the_query_string_and_the_default_port(twilio_app):
    client = twilio_app.test_client()
    body = form(MessageSid="SMquery01", SmsSid="SMquery01")
    path = "/webhook/twilio?tenant=1"
    assert post_form(client, body, url=URL, path=path).status_code == 401
    assert post_form(client, body, url="http://localhost:80/webhook/twilio?tenant=1", path=path).status_code == 200
    assert post_form(client, body, url=URL + "?tenant=1", path=path).status_code == 200


def test_missing_fields_or_not_a_form_is_400_and_nothing_is_stored(twilio_app):
    client = twilio_app.test_client()
    for body in (form(MessageSid=None, SmsSid=None, SmsMessageSid=None), form(From=None), form(From=""),
                 "", "not a form", '{"MessageSid": "SM1", "From": "whatsapp:+1"}'):
        response = post_form(client, body)
        assert response.status_code == 400, body
        assert "MessageSid" in response.get_json()["error"]
    assert count(twilio_app, WebhookEvent) == 0


def test_without_a_token_no_signature_is_needed_and_smssid_alone_is_enough(make_app):
    app = make_app()
    body = form(MessageSid=None, SmsMessageSid=None, SmsSid="SMonlysms1", Body="sin firma")
    assert post_form(app.test_client(), body, token=None).status_code == 200
    assert app.test_client().post("/webhook/twilio", data=b"MessageSid=\xff&From=x",
                                  content_type="application/x-www-form-urlencoded").status_code == 400
    wait_for_jobs(app)
    with app.app_context():
        assert db.session.scalar(select(Message.text).filter_by(wamid="SMonlysms1")) == "sin firma"


def test_body_over_the_limit_is_413(twilio_app):
    body = form(Body="a" * (3 * 1024 * 1024))
    assert post_form(twilio_app.test_client(), body).status_code == 413
    assert count(twilio_app, WebhookEvent) == 0


def test_database_down_answers_503_so_twilio_retries(app, make_app):
    broken = make_app(SQLALCHEMY_DATABASE_URI="mysql+pymysql://nobody@127.0.0.1:1/none", TWILIO_AUTH_TOKEN=TOKEN)
    assert post_form(broken.test_client(), form()).status_code == 503


# --- the parser -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mime, kind", [("image/jpeg", "image"), ("image/webp", "sticker"), ("audio/ogg", "audio"),
                                        ("video/mp4", "video"), ("application/pdf", "document")])
def test_media_type_comes_from_the_content_type(mime, kind):
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MMx/Media/ME{kind}"
    (message,) = twilio_payload.parse_form(form(NumMedia="1", MediaUrl0=url, MediaContentType0=mime, Body="pie")).messages
    assert (message.type, message.media_id, message.media_mime, message.text) == (kind, f"twilio:ME{kind}", mime, "pie")
    assert message.content == {"media_url": url, "account_sid": ACCOUNT}


def test_profile_name_wa_id_reply_context_buttons_and_unsupported():
    (message,) = twilio_payload.parse_form(form(ProfileName="Ana Pérez", WaId=NUMERO, From="whatsapp:+31 6 1234 5678",
                                                OriginalRepliedMessageSid="SMprev")).messages
    assert (message.numero, message.profile_name, message.context_wamid) == (NUMERO, "Ana Pérez", "SMprev")
    (button,) = twilio_payload.parse_form(form(ButtonText="Sí", ButtonPayload="confirmar")).messages
    assert (button.type, button.text, button.content) == ("button", "Sí", {"text": "Sí", "payload": "confirmar"})
    parsed = twilio_payload.parse_form(form(Body="", MessageType="reaction"))
    assert (parsed.messages[0].type, parsed.messages[0].content, parsed.kinds) == \
        ("unsupported", {"message_type": "reaction"}, ["unsupported"])
    assert twilio_payload.parse_form("garbage").kinds == ["unknown"]


# --- media ----------------------------------------------------------------------------------------------

def media_form(url: str, message_sid: str = "MMmedia0001") -> str:
    return form(MessageSid=message_sid, SmsSid=message_sid, SmsMessageSid=message_sid, Body="", NumMedia="1",
                MediaContentType0="image/jpeg", MediaUrl0=url)


def stored(app, wamid: str) -> Message:
    with app.app_context():
        message = db.session.scalar(select(Message).filter_by(wamid=wamid))
        db.session.expunge(message)
    return message


def test_media_is_fetched_with_basic_auth_following_the_redirect(make_app, fake_twilio, media_root):
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_MEDIA_HOSTS=(fake_twilio.origin,))
    url = fake_twilio.add_media("MMmedia0001", "ME0001", JPEG, "image/jpeg")
    assert post_form(app.test_client(), media_form(url)).status_code == 200
    wait_for_jobs(app)

    message = stored(app, "MMmedia0001")
    assert (message.media_status, message.media_error, message.media_size) == ("ok", None, len(JPEG))
    assert (media_root / message.media_path).read_bytes() == JPEG and message.media_path.endswith(".jpg")
    first, redirected = fake_twilio.calls()
    assert first["path"] == fake_twilio.media_path("MMmedia0001", "ME0001")
    assert first["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert redirected["path"] == "/cdn/ME0001" and redirected["host"].startswith("localhost:")
    assert redirected["authorization"] is None, "the credentials do not follow the redirect to another host"


def test_media_500_then_ok_is_retried_and_a_401_fails_with_the_reason(make_app, fake_twilio):
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_MEDIA_HOSTS=(fake_twilio.origin,))
    url = fake_twilio.add_media("MMmedia0002", "ME0002", JPEG, "image/jpeg")
    fake_twilio.fail(fake_twilio.media_path("MMmedia0002", "ME0002"), 500, 503)
    assert post_form(app.test_client(), media_form(url, "MMmedia0002")).status_code == 200
    wait_for_jobs(app)
    assert stored(app, "MMmedia0002").media_status == "ok"
    assert len(fake_twilio.calls(fake_twilio.media_path("MMmedia0002", "ME0002"))) == 3

    wrong = make_app(TWILIO_AUTH_TOKEN="wrong-token", TWILIO_MEDIA_HOSTS=(fake_twilio.origin,))
    url = fake_twilio.add_media("MMmedia0003", "ME0003", JPEG, "image/jpeg")
    body = media_form(url, "MMmedia0003")
    assert post_form(wrong.test_client(), body, token="wrong-token").status_code == 200
    wait_for_jobs(wrong)
    message = stored(wrong, "MMmedia0003")
    assert message.media_status == "failed" and "401" in message.media_error
    assert len(fake_twilio.calls(fake_twilio.media_path("MMmedia0003", "ME0003"))) == 1, "a 401 is not retried"


def test_media_type_and_size_checks_are_those_of_meta_media(make_app, fake_twilio):
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_MEDIA_HOSTS=(fake_twilio.origin,))
    url = fake_twilio.add_media("MMmedia0004", "ME0004", b"MZ\x90\x00", "application/x-msdownload")
    body = form(MessageSid="MMmedia0004", SmsSid="MMmedia0004", Body="", NumMedia="1",
                MediaContentType0="application/x-msdownload", MediaUrl0=url)
    assert post_form(app.test_client(), body).status_code == 200
    wait_for_jobs(app)
    message = stored(app, "MMmedia0004")
    assert message.type == "document" and message.media_status == "ok", "documents take any type, as on Meta"
    sticker = fake_twilio.add_media("MMmedia0005", "ME0005", JPEG, "image/jpeg")
    body = form(MessageSid="MMmedia0005", SmsSid="MMmedia0005", Body="", NumMedia="1",
                MediaContentType0="image/webp", MediaUrl0=sticker)
    assert post_form(app.test_client(), body).status_code == 200
    wait_for_jobs(app)
    message = stored(app, "MMmedia0005")
    assert message.type == "sticker" and message.media_status == "ok"
    big = fake_twilio.add_media("MMmedia0006", "ME0006", b"\x00" * (600 * 1024), "image/webp")
    body = form(MessageSid="MMmedia0006", SmsSid="MMmedia0006", Body="", NumMedia="1",
                MediaContentType0="image/webp", MediaUrl0=big)
    assert post_form(app.test_client(), body).status_code == 200
    wait_for_jobs(app)
    message = stored(app, "MMmedia0006")
    assert message.media_status == "failed" and "grande" in message.media_error


def test_a_media_url_outside_twilio_media_hosts_is_never_fetched(make_app, fake_twilio):
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN)  # the default: only https://api.twilio.com
    assert app.config["TWILIO_MEDIA_HOSTS"] == ("https://api.twilio.com",)
    url = fake_twilio.add_media("MMmedia0007", "ME0007", JPEG, "image/jpeg")
    for wamid, media_url in (("MMmedia0007", url),
                             ("MMmedia0008", "http://api.twilio.com/2010-04-01/Accounts/AC/Media/ME1"),
                             ("MMmedia0009", "https://user@api.twilio.com/2010-04-01/Accounts/AC/Media/ME1")):
        assert post_form(app.test_client(), media_form(media_url, wamid)).status_code == 200
    wait_for_jobs(app)
    for wamid in ("MMmedia0007", "MMmedia0008", "MMmedia0009"):
        message = stored(app, wamid)
        assert message.media_status == "failed" and "no permitida" in message.media_error, wamid
    assert fake_twilio.calls() == []


def test_twilio_media_hosts_setting():
    from config import ConfigError, load_config
    env = {"SECRET_KEY": "x", "WHATSAPP_TRANSPORT": "sandbox"}
    assert load_config({**env, "TWILIO_MEDIA_HOSTS": "api.twilio.com, http://127.0.0.1:8080/"})["TWILIO_MEDIA_HOSTS"] \
        == ("https://api.twilio.com", "http://127.0.0.1:8080")
    with pytest.raises(ConfigError, match="TWILIO_MEDIA_HOSTS"):
        load_config({**env, "TWILIO_MEDIA_HOSTS": "ftp://x"})

