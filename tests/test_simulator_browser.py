"""The simulator in a real browser: headless Chromium (Debian's, never downloaded) against the app served over HTTP.

Walks the demo flow as a customer would: greeting → welcome list → 'Cotizar mesón' → measurements →
quote → a reply button; checks formatting, ticks and an audio note, and saves screenshots to
tests/artifacts/ (laptop and phone sizes) for a person to look at.
"""
import io
import math
import re
import struct
import wave

import pytest

from extensions import db
from services.demo_flow import seed_demo_flow
from tests.browser import ARTIFACTS, TIMEOUT_MS, browser, served, sync_api, watch_errors  # noqa: F401

USERNAME, PASSWORD = "probadora", "clave-del-navegador-1"


def wav_note(seconds: float = 0.6, rate: int = 8000) -> bytes:
    """A short, valid WAV (a 440 Hz tone) the browser can play."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                                 for i in range(int(seconds * rate))))
    return buffer.getvalue()


@pytest.fixture
def live_url(make_app, make_user):
    """The app (demo flow seeded, one user) behind werkzeug's threaded server on a free port."""
    app = make_app()
    with app.app_context():
        seed_demo_flow()
        db.session.remove()
    make_user(USERNAME, PASSWORD)
    with served(app) as url:
        yield url


def bot_bubble(page, text: str):
    return page.locator(".sim-row-out", has_text=text).last


def test_a_customer_walks_the_demo_flow_in_chromium(live_url, browser, tmp_path):
    sync_api.expect.set_options(timeout=TIMEOUT_MS)
    expect = sync_api.expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    laptop = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-CL")
    page = laptop.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = watch_errors(page)

    # Signing in through the form, coming back to the simulator.
    page.goto(f"{live_url}/simulador")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/simulador$"))
    expect(page.locator("nav a", has_text="Simulador")).to_be_visible()
    expect(page.locator("#sim-empty")).to_be_visible()

    # hola → the welcome list.
    page.fill("#sim-text", "hola")
    page.press("#sim-text", "Enter")
    expect(page.locator(".sim-row-in", has_text="hola")).to_be_visible()
    expect(page.locator("#sim-text")).to_have_value("")
    welcome = bot_bubble(page, "Bienvenido")
    expect(welcome).to_be_visible()
    expect(welcome.locator(".sim-sender")).to_have_text("Bot")

    # The list opens its rows; picking one sends a list_reply.
    welcome.locator(".sim-list-button").click()
    expect(page.locator("#sim-sheet")).to_be_visible()
    expect(page.locator(".sim-sheet-row")).to_have_count(3)
    page.locator(".sim-sheet-row", has_text="Cotizar mesón").click()
    expect(page.locator("#sim-sheet")).to_be_hidden()
    expect(page.locator(".sim-row-in", has_text="Cotizar mesón")).to_be_visible()
    asked = bot_bubble(page, "medidas")
    expect(asked).to_be_visible()
    expect(asked.locator("strong")).to_have_text("2.40 x 0.60")  # *bold* rendered as bold

    # The measurements → the quote in m², then the follow-up buttons.
    page.fill("#sim-text", "2.40 x 0.60")
    page.keyboard.press("Enter")
    expect(bot_bubble(page, "m²")).to_be_visible()
    follow_up = page.locator(".sim-row-out[data-type=buttons]", has_text="¿Te ayudo con algo más?").last
    expect(follow_up.locator(".sim-reply-button")).to_have_count(3)

    # Tapping a reply button sends a button_reply.
    follow_up.locator(".sim-reply-button", has_text="Ventas").click()
    expect(page.locator(".sim-row-in", has_text="Ventas")).to_be_visible()
    ventas = page.locator(".sim-row-out[data-type=buttons]", has_text="¿Qué te interesa?").last
    expect(ventas.locator(".sim-reply-button")).to_have_text(["Catálogo", "Precios", "Volver"])

    # The customer's phone had the chat open: the bot's messages show blue ticks.
    expect(ventas.locator(".sim-tick")).to_have_class(re.compile(r"sim-tick-read"))
    expect(page.locator(".sim-row-out .sim-tick[data-status=read]")).to_have_count(
        page.locator(".sim-row-out").count())
    expect(page.locator("#sim-error")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "simulador.png"))

    # The same conversation on a phone-sized screen.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                device_scale_factor=1, locale="es-CL", storage_state=laptop.storage_state())
    mobile = phone.new_page()
    errors += watch_errors(mobile)
    mobile.goto(f"{live_url}/simulador")
    expect(mobile.locator(".sim-row-out[data-type=buttons]", has_text="¿Qué te interesa?")).to_be_in_viewport()
    expect(mobile.locator("#sim-text")).to_be_in_viewport()
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    mobile.screenshot(path=str(ARTIFACTS / "simulador-movil.png"))
    phone.close()

    # Text is escaped before WhatsApp formatting: markup typed by the customer stays text.
    page.fill("#sim-text", "<b>no</b> _cursiva_ <img src=x onerror=alert(1)>")
    page.press("#sim-text", "Enter")
    typed = page.locator(".sim-row-in", has_text="<b>no</b>")
    expect(typed).to_be_visible()
    expect(typed.locator("em")).to_have_text("cursiva")
    assert typed.locator("b, img").count() == 0

    # An audio note: picked from a file, stored, and playable in the bubble.
    note = tmp_path / "nota.wav"
    note.write_bytes(wav_note())
    page.set_input_files("#sim-audio", str(note))
    player = page.locator(".sim-row-in[data-type=audio] audio")
    expect(player).to_have_count(1)
    page.wait_for_function("() => { const a = document.querySelector('.sim-row-in[data-type=audio] audio');"
                           " return a && a.readyState >= 1 && a.duration > 0.5; }")

    # A number field change starts another conversation; a bad number is explained.
    page.fill("#sim-numero", "12ab")
    page.press("#sim-numero", "Enter")
    expect(page.locator("#sim-error")).to_contain_text("Número inválido")
    page.click("#sim-nueva")
    expect(page.locator("#sim-empty")).to_be_visible()
    assert re.fullmatch(r"999\d{9}", page.input_value("#sim-numero"))
    expect(page.locator("#sim-error")).to_be_hidden()

    laptop.close()
    assert errors == []
