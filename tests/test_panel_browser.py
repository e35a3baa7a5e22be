"""The agents' panel in a real browser: headless Chromium (Debian's) against the app served over HTTP.

An agent of role "ventas" signs in and works a chat while webhooks arrive: new messages, status ticks and
list changes appear live; she replies with text, a quick reply and a file, takes the chat over and hands it
back. An agent of role "soporte" never sees that chat. Screenshots go to tests/artifacts/.
"""
import json
import re
import struct
import time
import zlib

import pytest
from sqlalchemy import select

from extensions import db
from models import Chat, Message, Role
from models.types import utcnow
from tests.browser import ARTIFACTS, TIMEOUT_MS, browser, served, sign_in, sync_api, watch_errors  # noqa: F401
from tests.conftest import post_webhook, text_payload, wait_for_jobs

expect = sync_api.expect

VENTAS, OTRO, SOPORTE, LARGO = "5215511110001", "5215511110002", "5215522220001", "5215511110003"
AGENT, OTHER, PASSWORD = "vera", "sara", "clave-de-agente-1"
MEDIA_UPLOAD = "/v25.0/1122334455667/media"


def png(width: int = 160, height: int = 100, rgb=(0, 168, 132)) -> bytes:
    """A real, solid-colour PNG the browser can draw."""
    row = b"\x00" + bytes(rgb) * width
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


def envelope(value: dict) -> bytes:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550000000", "phone_number_id": "1122334455667"}, **value}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]}).encode()


def customer_message(numero: str, wamid: str, kind: str, body: dict, name: str = "Cliente") -> bytes:
    message = {"from": numero, "id": wamid, "timestamp": str(int(time.time())), "type": kind}
    message.update({"contacts": body} if kind == "contacts" else {kind: body})
    return envelope({"contacts": [{"profile": {"name": name}, "wa_id": numero}], "messages": [message]})


def status_update(wamid: str, numero: str, status: str, error: dict | None = None) -> bytes:
    item = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": numero}
    if error:
        item["errors"] = [error]
    return envelope({"statuses": [item]})


def says(app, numero: str, body: str, name: str = "Ana Pérez") -> None:
    wamid = f"wamid.in.{time.monotonic_ns()}"
    payload = text_payload(wamid, numero=numero, body=body, name=name, timestamp=int(time.time()))
    assert post_webhook(app.test_client(), json.dumps(payload).encode()).status_code == 200


@pytest.fixture
def panel(make_app, make_user, graph):
    """A cloud-transport app (Graph faked) with chats of two roles, a long history and quick replies."""
    from services.quick_replies import create_quick_reply
    from services.rules.media import Upload
    import io

    app = make_app(WHATSAPP_TRANSPORT="cloud")
    graph.add_media("media.in.1", png(), "image/png")
    client = app.test_client()
    says(app, OTRO, "Buenos días, ¿hacen envíos a Valparaíso?", name="Pedro Soto")
    post_webhook(client, customer_message(OTRO, "wamid.loc", "location", {
        "latitude": -33.0472, "longitude": -71.6127, "name": "Bodega central", "address": "Av. Brasil 123"},
        name="Pedro Soto"))
    post_webhook(client, customer_message(OTRO, "wamid.img", "image", {"id": "media.in.1",
                                                                     "mime_type": "image/png",
                                                                     "caption": "Así quedó el mesón"},
                                          name="Pedro Soto"))
    post_webhook(client, customer_message(OTRO, "wamid.vcard", "contacts", [{
        "name": {"formatted_name": "Marta Díaz"}, "phones": [{"phone": "+56 9 8765 4321", "wa_id": "56987654321"}]}],
        name="Pedro Soto"))
    says(app, SOPORTE, "Mi pedido llegó roto", name="Luis Vega")
    says(app, LARGO, "primer mensaje", name="Carla Ruiz")
    says(app, VENTAS, "hola")
    wait_for_jobs(app)
    with app.app_context():
        roles = {name: db.session.scalar(select(Role).filter_by(name=name)) or Role(name=name, keywords="")
                 for name in ("ventas", "soporte")}
        ids = {}
        for numero, role in ((VENTAS, "ventas"), (OTRO, "ventas"), (LARGO, "ventas"), (SOPORTE, "soporte")):
            chat = db.session.scalar(select(Chat).filter_by(numero=numero))
            chat.roles = [roles[role]]
            ids[numero] = chat.id
        db.session.get(Chat, ids[OTRO]).last_sentiment = "positivo"
        db.session.get(Chat, ids[SOPORTE]).last_sentiment = "negativo"
        now = utcnow()
        db.session.add_all(Message(chat_id=ids[LARGO], direction="in", sender="customer", type="text",
                                   text=f"mensaje antiguo {index}", status="received", created_at=now,
                                   updated_at=now, processed_at=now) for index in range(80))
        db.session.commit()
    with app.test_request_context():
        create_quick_reply("Horario", "Atendemos de *lunes a viernes*, 9 a 18 h.")
        create_quick_reply("Catálogo", "Le envío el catálogo.", [Upload("catalogo.png", io.BytesIO(png()))])
    make_user(AGENT, PASSWORD, roles=["ventas"])
    make_user(OTHER, PASSWORD, roles=["soporte"])
    with served(app) as url:
        yield app, url, ids


def wamid_of(app, text: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Message.wamid).filter_by(direction="out", text=text))


def bubble(page, text: str, side: str = "in"):
    return page.locator(f"#wa-messages .sim-row-{side}", has_text=text).last


def test_an_agent_works_a_chat_live_in_chromium(panel, browser, graph, tmp_path):
    app, url, ids = panel
    expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-CL")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = watch_errors(page)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))

    sign_in(page, url, AGENT, PASSWORD)
    expect(page).to_have_url(re.compile(r"/$"))
    chat_list = page.locator("#wa-chats .wa-chat")
    expect(chat_list).to_have_count(3)
    expect(page.locator("#wa-live")).to_have_attribute("data-state", "ok")
    expect(page.locator(f'#wa-chats .wa-chat[data-id="{ids[SOPORTE]}"]')).to_have_count(0)

    # Opening the chat shows its history; the URL follows without a reload.
    ventas = page.locator(f'#wa-chats .wa-chat[data-id="{ids[VENTAS]}"]')
    expect(ventas.locator(".wa-unread")).to_have_text("1")
    ventas.click()
    expect(page).to_have_url(re.compile(rf"/chats/{ids[VENTAS]}$"))
    expect(page.locator("#wa-head-name")).to_have_text("Ana Pérez")
    expect(bubble(page, "hola")).to_be_visible()
    expect(ventas.locator(".wa-unread")).to_have_count(0)
    page.evaluate("window.__sameDocument = true")

    # A customer message arrives live, within a second, and moves up the list with its preview.
    started = time.monotonic()
    says(app, VENTAS, "¿Tienen mesones de *granito*?")
    expect(bubble(page, "¿Tienen mesones de")).to_be_visible()
    arrival = time.monotonic() - started
    expect(bubble(page, "¿Tienen mesones de").locator("strong")).to_have_text("granito")
    expect(chat_list.first).to_have_attribute("data-id", str(ids[VENTAS]))
    # The bot (still in charge) answers; its reply shows live too and becomes the list's preview.
    expect(bubble(page, "No entendí", "out").locator(".sim-sender")).to_have_text("Bot")
    expect(chat_list.first.locator(".wa-chat-preview")).to_contain_text("No entendí")
    says(app, OTRO, "¿Sigue en pie el presupuesto?", name="Pedro Soto")
    otro = page.locator(f'#wa-chats .wa-chat[data-id="{ids[OTRO]}"]')
    expect(otro.locator(".wa-unread")).to_have_text("5")
    print(f"\nlive: the customer message was shown {arrival * 1000:.0f} ms after its webhook was posted")
    assert arrival < 1.5, f"the message took {arrival:.2f}s to appear"

    # Take over, hand back.
    expect(page.locator("#wa-head-state")).to_have_text("Atiende el bot")
    page.click("#wa-take")
    expect(page.locator("#wa-head-state")).to_have_text("Atiende un asesor")
    expect(page.locator("#wa-take")).to_be_hidden()
    page.click("#wa-handback")
    expect(page.locator("#wa-head-state")).to_have_text("Atiende el bot")
    expect(page.locator(f'#wa-chats .wa-chat[data-id="{ids[VENTAS]}"] .wa-state-chip')).to_have_text("Bot")

    # A text reply: it takes the chat over, shows a tick, and the tick follows the status webhooks.
    page.fill("#wa-text", "Sí, tenemos granito negro y blanco.")
    page.press("#wa-text", "Enter")
    reply = bubble(page, "granito negro", "out")
    expect(reply.locator(".sim-sender")).to_have_text("Asesor")
    expect(reply.locator(".sim-tick")).to_have_attribute("data-status", "sent")
    expect(page.locator("#wa-text")).to_have_value("")
    expect(page.locator("#wa-head-state")).to_have_text("Atiende un asesor")
    wamid = wamid_of(app, "Sí, tenemos granito negro y blanco.")
    post_webhook(app.test_client(), status_update(wamid, VENTAS, "delivered"))
    expect(reply.locator(".sim-tick")).to_have_attribute("data-status", "delivered")
    post_webhook(app.test_client(), status_update(wamid, VENTAS, "read"))
    expect(reply.locator(".sim-tick")).to_have_attribute("data-status", "read")
    expect(reply.locator(".sim-tick")).to_have_class(re.compile("sim-tick-read"))

    # A quick reply, then one with a file.
    page.locator("#wa-quick .wa-quick-button", has_text="Horario").click()
    quick = bubble(page, "lunes a viernes", "out")
    expect(quick.locator("strong")).to_have_text("lunes a viernes")
    graph.script("POST", MEDIA_UPLOAD, (200, {"id": "media.up.1"}), (200, {"id": "media.up.2"}))
    page.locator("#wa-quick .wa-quick-button", has_text="Catálogo").click()
    expect(bubble(page, "Le envío el catálogo", "out")).to_be_visible()
    catalog = page.locator("#wa-messages .sim-row-out[data-type=image]").last
    expect(catalog.locator("img.sim-image")).to_be_visible()
    expect(catalog.locator(".sim-tick")).to_have_attribute("data-status", "sent")

    # A failed delivery shows its reason.
    failed = wamid_of(app, "Atendemos de *lunes a viernes*, 9 a 18 h.")
    post_webhook(app.test_client(), status_update(failed, VENTAS, "failed", {
        "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message"}))
    expect(quick.locator(".sim-tick")).to_have_attribute("data-status", "failed")
    expect(quick.locator(".sim-tick")).to_have_attribute("title", re.compile("Re-engagement message"))
    expect(quick.locator(".sim-failed-note")).to_contain_text("131047")

    # An attachment from the disk, with a caption.
    photo = tmp_path / "plano.png"
    photo.write_bytes(png(rgb=(83, 189, 235)))
    page.set_input_files("#wa-file", str(photo))
    expect(page.locator("#wa-attach-dialog")).to_be_visible()
    page.fill("#wa-attach-caption", "Plano de su cocina")
    page.locator("#wa-attach-form button[type=submit]").click()
    expect(page.locator("#wa-attach-dialog")).to_be_hidden()
    sent_photo = bubble(page, "Plano de su cocina", "out")
    expect(sent_photo.locator("img.sim-image")).to_be_visible()
    bad = tmp_path / "virus.exe"
    bad.write_bytes(b"MZ")
    page.set_input_files("#wa-file", str(bad))
    expect(page.locator("#wa-error")).to_contain_text("Tipo de archivo no admitido")

    # Customer text is text: markup and scripts are shown, never run.
    says(app, VENTAS, "<script>alert(1)</script><img src=x onerror=alert(2)>")
    xss = bubble(page, "<script>alert(1)</script>")
    expect(xss).to_be_visible()
    assert xss.locator("script, img").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []
    page.screenshot(path=str(ARTIFACTS / "panel-laptop.png"))

    # Other message types of another chat: location with a map link, image, contacts; and the long history pages in.
    page.locator(f'#wa-chats .wa-chat[data-id="{ids[OTRO]}"]').click()
    expect(page.locator("#wa-head-name")).to_have_text("Pedro Soto")
    location = page.locator("#wa-messages .sim-row-in[data-type=location]")
    expect(location.locator("a.sim-location-link")).to_have_attribute("href", re.compile(
        r"^https://www\.openstreetmap\.org/\?mlat=-33\.0472&mlon=-71\.6127"))
    expect(page.locator("#wa-messages .sim-row-in[data-type=image] img.sim-image")).to_be_visible()
    expect(page.locator("#wa-messages .sim-row-in[data-type=contacts]")).to_contain_text("Marta Díaz")
    page.locator("#wa-messages .sim-row-in[data-type=location]").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "panel-laptop-tipos.png"))

    page.locator(f'#wa-chats .wa-chat[data-id="{ids[LARGO]}"]').click()
    rows = page.locator("#wa-messages .sim-row")
    expect(rows.last).to_contain_text("mensaje antiguo 79")
    first_page = rows.count()
    assert first_page < 82, "the whole history was loaded at once"
    for _ in range(4):
        page.locator("#wa-messages").evaluate("node => { node.scrollTop = 0; node.dispatchEvent(new Event('scroll')); }")
        page.wait_for_timeout(150)
    expect(rows).to_have_count(82)
    expect(page.locator("#wa-history-note")).to_have_text("Inicio de la conversación")

    # Search by text, filter by state.
    page.fill("#wa-search", "presupuesto")
    expect(chat_list).to_have_count(1)
    expect(chat_list.first).to_have_attribute("data-id", str(ids[OTRO]))
    page.fill("#wa-search", "")
    page.locator(".wa-states .wa-chip[data-state=human]").click()
    expect(chat_list).to_have_count(1)
    expect(chat_list.first).to_have_attribute("data-id", str(ids[VENTAS]))
    page.locator(".wa-states .wa-chip[data-state='']").click()
    expect(chat_list).to_have_count(3)
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"

    # The phone: the list OR the conversation, with a back button.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                device_scale_factor=2, locale="es-CL", storage_state=context.storage_state())
    mobile = phone.new_page()
    errors += watch_errors(mobile)
    mobile.goto(f"{url}/")
    expect(mobile.locator("#wa-chats")).to_be_visible()
    expect(mobile.locator("#wa-conv")).to_be_hidden()
    expect(mobile.locator("#wa-role")).to_be_in_viewport()
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the chat list scrolls sideways on a phone ({width}px)"
    mobile.screenshot(path=str(ARTIFACTS / "panel-phone-list.png"))
    mobile.locator(f'#wa-chats .wa-chat[data-id="{ids[VENTAS]}"]').click()
    expect(mobile.locator("#wa-chats")).to_be_hidden()
    expect(mobile.locator("#wa-messages .sim-row-out", has_text="Plano de su cocina")).to_be_visible()
    expect(mobile.locator("#wa-text")).to_be_in_viewport()
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the panel scrolls sideways on a phone ({width}px)"
    mobile.screenshot(path=str(ARTIFACTS / "panel-phone.png"))
    mobile.click("#wa-back")
    expect(mobile.locator("#wa-chats")).to_be_visible()
    expect(mobile).to_have_url(re.compile(r"/$"))
    phone.close()
    context.close()
    assert errors == []


def test_an_agent_of_another_role_never_sees_the_chat(panel, browser):
    app, url, ids = panel
    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-CL")
    page = context.new_page()
    errors = watch_errors(page)
    sign_in(page, url, OTHER, PASSWORD)
    chat_list = page.locator("#wa-chats .wa-chat")
    expect(chat_list).to_have_count(1)
    expect(chat_list.first).to_have_attribute("data-id", str(ids[SOPORTE]))
    expect(page.locator("#wa-live")).to_have_attribute("data-state", "ok")

    # Live messages of the other role's chat never reach this agent; her own do.
    says(app, VENTAS, "mensaje solo para ventas")
    says(app, SOPORTE, "sigo esperando")
    expect(chat_list.first.locator(".wa-unread")).to_have_text("2")
    wait_for_jobs(app)
    page.wait_for_timeout(300)
    expect(chat_list).to_have_count(1)
    assert "solo para ventas" not in page.content()

    # Nor by URL: the page, the JSON and the media answer 404.
    response = page.goto(f"{url}/chats/{ids[VENTAS]}")
    assert response.status == 404
    for path in (f"/api/chats/{ids[VENTAS]}", f"/api/chats/{ids[VENTAS]}/mensajes"):
        assert page.request.get(f"{url}{path}").status == 404
    context.close()
    assert [e for e in errors if "404" not in e] == []


def test_the_panel_reconnects_after_a_drop_and_catches_up(make_app, make_user, browser):
    from tests.browser import CuttableProxy

    app = make_app()
    says(app, VENTAS, "hola")
    wait_for_jobs(app)
    with app.app_context():
        chat = db.session.scalar(select(Chat).filter_by(numero=VENTAS))
        chat.roles = [Role(name="ventas", keywords="")]
        chat_id = chat.id
        db.session.commit()
    make_user(AGENT, PASSWORD, roles=["ventas"])
    expect.set_options(timeout=TIMEOUT_MS)
    with served(app) as url:
        proxy = CuttableProxy(int(url.rsplit(":", 1)[1]))
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-CL")
            page = context.new_page()
            errors = watch_errors(page)
            sign_in(page, proxy.url, AGENT, PASSWORD, path=f"/chats/{chat_id}")
            expect(page.locator("#wa-live")).to_have_attribute("data-state", "ok")
            expect(bubble(page, "hola")).to_be_visible()

            proxy.cut()
            expect(page.locator("#wa-live")).to_have_attribute("data-state", "down")
            expect(page.locator("#wa-live")).to_contain_text("reconectando")
            says(app, VENTAS, "¿sigue ahí?")  # arrives while the browser is cut off
            wait_for_jobs(app)
            page.wait_for_timeout(500)
            assert bubble(page, "¿sigue ahí?").count() == 0

            proxy.restore()
            expect(page.locator("#wa-live")).to_have_attribute("data-state", "ok")
            expect(bubble(page, "¿sigue ahí?")).to_be_visible()
            says(app, VENTAS, "después de volver")
            expect(bubble(page, "después de volver")).to_be_visible()
            context.close()
        finally:
            proxy.close()
    assert [e for e in errors if "ERR_" not in e and "Failed to load resource" not in e] == []


def test_an_admin_renames_a_chat_changes_its_roles_and_sees_every_kind_of_message(make_app, make_user, browser,
                                                                                 media_root):
    from tests.test_simulator_browser import wav_note

    app = make_app()
    says(app, VENTAS, "hola")
    wait_for_jobs(app)
    (media_root / "nota.wav").write_bytes(wav_note())
    with app.app_context():
        chat = db.session.scalar(select(Chat).filter_by(numero=VENTAS))
        chat.roles = [Role(name="ventas", keywords="")]
        db.session.add(Role(name="soporte", keywords=""))
        chat_id, now = chat.id, utcnow()

        def add(direction, kind, text=None, content=None, **fields):
            sender = "customer" if direction == "in" else "bot"
            db.session.add(Message(chat_id=chat_id, direction=direction, sender=sender, type=kind, text=text,
                                   content=json.dumps(content) if content else None, created_at=now, updated_at=now,
                                   processed_at=now, status=fields.pop("status", "received" if direction == "in"
                                                                       else "delivered"), **fields))
        add("in", "audio", media_id="m.audio", media_path="nota.wav", media_mime="audio/wav", media_status="ok",
            transcription="quiero cotizar un mesón")
        add("in", "audio", media_id="m.audio2", media_status="pending", transcription_status="no transcrito: "
            "la nota dura más de 60 s")
        add("in", "reaction", "👍", {"message_id": "wamid.x", "emoji": "👍"})
        add("in", "interactive", "Cotizar mesón", {"kind": "list_reply", "id": "cotizar", "title": "Cotizar mesón"})
        add("out", "list", "¿Qué necesita?", {"options": ["Cotizar", "Hablar con ventas"]})
        add("out", "template", None, {"name": "recordatorio_pago", "language": "es"})
        add("in", "document", "contrato", {"filename": "contrato.pdf"}, media_id="m.doc", media_status="failed",
            media_error="Graph respondió 404")
        db.session.commit()
    make_user("jefa", PASSWORD, admin=True)
    expect.set_options(timeout=TIMEOUT_MS)
    with served(app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-CL")
        page = context.new_page()
        errors = watch_errors(page)
        sign_in(page, url, "jefa", PASSWORD, path=f"/chats/{chat_id}")

        messages = page.locator("#wa-messages")
        audio = messages.locator(".sim-row-in[data-type=audio]").first
        expect(audio.locator("audio")).to_have_count(1)
        expect(audio.locator(".sim-transcription")).to_have_text("Transcripción: quiero cotizar un mesón")
        expect(messages.locator(".sim-row-in[data-type=audio]").nth(1)).to_contain_text("no transcrito: la nota dura")
        expect(messages.locator(".sim-row-in[data-type=reaction] .sim-reaction")).to_have_text("👍")
        expect(messages.locator(".sim-row-in[data-type=interactive] .sim-kind")).to_have_text("Respuesta de lista")
        outbound_list = messages.locator(".sim-row-out[data-type=list]")
        outbound_list.locator(".sim-list-button").click()
        expect(outbound_list.locator(".sim-options li")).to_have_text(["Cotizar", "Hablar con ventas"])
        expect(messages.locator(".sim-row-out[data-type=template] .sim-kind")).to_have_text(
            "Plantilla «recordatorio_pago»")
        expect(messages.locator(".sim-row-in[data-type=document]")).to_contain_text("Graph respondió 404")
        page.wait_for_function("() => { const a = document.querySelector('.sim-row-in[data-type=audio] audio');"
                               " return a && a.readyState >= 1 && a.duration > 0.5; }")

        # Alias and roles, through their dialogs.
        page.click("#wa-alias")
        page.fill("#wa-alias-input", "Doña Ana <b>")
        page.locator("#wa-alias-form button[type=submit]").click()
        expect(page.locator("#wa-head-name")).to_have_text("Doña Ana <b>")
        expect(page.locator(f'#wa-chats .wa-chat[data-id="{chat_id}"] .wa-chat-name')).to_have_text("Doña Ana <b>")
        page.click("#wa-roles")
        page.locator("#wa-roles-form label", has_text="soporte").click()
        page.locator("#wa-roles-form button[type=submit]").click()
        expect(page.locator("#wa-head-roles")).to_have_text(re.compile(r"^(ventas, soporte|soporte, ventas)$"))

        # A list from the reply box.
        page.click("#wa-list")
        page.fill("#wa-list-text", "Elija una sucursal")
        page.fill("#wa-list-options", "Centro\nNorte\nSur")
        page.locator("#wa-list-form button[type=submit]").click()
        sent = messages.locator(".sim-row-out[data-type=list]", has_text="Elija una sucursal")
        expect(sent.locator(".sim-sender")).to_have_text("Asesor")

        # Outside the 24-hour window only templates can be sent.
        with app.app_context():
            db.session.get(Chat, chat_id).last_inbound_at = now.replace(year=2020)
            db.session.commit()
        page.reload()
        expect(page.locator("#wa-compose")).to_be_hidden()
        expect(page.locator("#wa-template-only")).to_be_visible()
        expect(page.locator("#wa-head-window")).to_have_text("Fuera de 24 h")
        page.fill("#wa-template-name", "recordatorio_pago")
        page.locator("#wa-template-form button[type=submit]").click()
        expect(messages.locator(".sim-row-out[data-type=template][data-sender=agent]")).to_have_count(1)
        context.close()
    assert errors == []
