"""The dashboard in a real browser: headless Chromium (Debian's) against the app served over HTTP.

Signs in, opens /tablero on a busy month, waits until every chart has drawn on its canvas, checks the
Chart.js file came from this server (no CDN), and saves tests/artifacts/tablero.png for a person to look at.
"""
import re
from pathlib import Path

import pytest

from tests.browser import ARTIFACTS, browser, served, sync_api, watch_errors  # noqa: F401
from tests.tablero_data import seed_dashboard, seed_month

USERNAME, PASSWORD = "gerenta", "clave-del-tablero-1"
VENDOR = Path(__file__).resolve().parents[1] / "static" / "vendor" / "chart.umd.js"



@pytest.fixture
def live_url(make_app, make_user):
    assert VENDOR.is_file(), "falta static/vendor/chart.umd.js: ejecute `make vendor` (npm install de chart.js)"
    app = make_app()
    make_user(USERNAME, PASSWORD, admin=True)
    seed_dashboard(app)
    seed_month(app)
    with served(app) as url:
        yield url


def painted_pixels(page, selector: str) -> int:
    return page.evaluate("""(selector) => {
        const canvas = document.querySelector(selector);
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
        return painted;
    }""", selector)


def test_dashboard_draws_every_chart(live_url, browser):
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="es-CL")
    page.set_default_timeout(15_000)
    errors, outside = watch_errors(page), []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_url) else None)

    page.goto(f"{live_url}/tablero?desde=2026-03-01&hasta=2026-03-31")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/tablero"))
    if "desde=" not in page.url:
        page.goto(f"{live_url}/tablero?desde=2026-03-01&hasta=2026-03-31")
    expect(page.locator("body")).to_have_attribute("data-tablero", "listo")

    canvases = page.locator("canvas[data-chart]")
    names = canvases.evaluate_all("(all) => all.map((c) => c.dataset.chart)")
    assert len(names) == 12
    for name in names:
        expect(page.locator(f'canvas[data-chart="{name}"]')).to_have_attribute("data-ready", "1")
        assert painted_pixels(page, f'canvas[data-chart="{name}"]') > 500, f"gráfico {name} vacío"
    expect(page.locator("#kpi-mensajes")).not_to_have_text("…")
    assert page.locator("#kpi-primera").inner_text() != "sin datos"
    expect(page.locator("#errores tbody tr")).to_have_count(3)
    assert page.locator("#tablero-error").is_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tablero.png"), full_page=True)
    assert errors == [], errors

    page.goto(f"{live_url}/tablero?desde=2026-03-31&hasta=2026-03-01")
    assert "posterior" in page.content()
    assert outside == [], f"peticiones fuera del servidor: {outside}"
