"""Exact Graph API bodies built by services.whatsapp_payloads, and WhatsApp's limits."""
import pytest

from services.whatsapp_payloads import PayloadError, build_message

TO = "5215512345678"
WAMID = "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABIYFjNFQjBDNzA1QjFBRjM0M0Q2QTk2AA=="


def envelope(kind: str, body, **extra) -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": kind, kind: body,
            **extra}


# --- text ----------------------------------------------------------------------------------------

def test_text_without_url_has_no_preview():
    assert build_message(TO, "text", "Hola, ¿en qué te ayudo?", {}) == envelope(
        "text", {"preview_url": False, "body": "Hola, ¿en qué te ayudo?"})


@pytest.mark.parametrize("body", ["Mira https://ejemplo.mx/pedido/1", "visita www.ejemplo.mx", "HTTP://X.MX"])
def test_text_with_url_asks_for_preview(body):
    assert build_message(TO, "text", body, {})["text"] == {"preview_url": True, "body": body}


def test_text_keeps_whitespace_and_newlines():
    body = "Hola\n\n  1. Pedido\n  2. Factura"
    assert build_message(TO, "text", body, {})["text"]["body"] == body


def test_text_reply_adds_context():
    assert build_message(TO, "text", "ok", {}, reply_to=WAMID) == envelope(
        "text", {"preview_url": False, "body": "ok"}, context={"message_id": WAMID})


@pytest.mark.parametrize("body", [None, "", "   \n"])
def test_empty_text_is_refused(body):
    with pytest.raises(PayloadError, match="vacío"):
        build_message(TO, "text", body, {})


def test_text_over_4096_is_refused():
    with pytest.raises(PayloadError, match="4096"):
        build_message(TO, "text", "a" * 4097, {})
    assert build_message(TO, "text", "a" * 4096, {})["text"]["body"] == "a" * 4096


def test_missing_recipient_and_unknown_kind():
    with pytest.raises(PayloadError, match="destinatario"):
        build_message("", "text", "hola", {})
    with pytest.raises(PayloadError, match="desconocido"):
        build_message(TO, "fax", "hola", {})
    assert issubclass(PayloadError, ValueError)


# --- media ---------------------------------------------------------------------------------------

def test_image_by_link_with_caption():
    assert build_message(TO, "image", "Tu ticket", {"link": "https://cdn.ejemplo.mx/t.jpg"}) == envelope(
        "image", {"link": "https://cdn.ejemplo.mx/t.jpg", "caption": "Tu ticket"})


def test_image_by_media_id_caption_from_content():
    assert build_message(TO, "image", None, {"media_id": "1037543291543636", "caption": "Foto"}) == envelope(
        "image", {"id": "1037543291543636", "caption": "Foto"})


def test_video_caption():
    assert build_message(TO, "video", "Tutorial", {"media_id": "555"}) == envelope(
        "video", {"id": "555", "caption": "Tutorial"})


def test_document_with_filename_and_caption():
    assert build_message(TO, "document", "Su factura", {"link": "https://x.mx/f.pdf", "filename": "factura.pdf"}) \
        == envelope("document", {"link": "https://x.mx/f.pdf", "caption": "Su factura", "filename": "factura.pdf"})


def test_audio_and_sticker_take_no_caption():
    assert build_message(TO, "audio", "ignorado", {"media_id": "777"}) == envelope("audio", {"id": "777"})
    assert build_message(TO, "sticker", "ignorado", {"link": "https://x.mx/s.webp"}) == envelope(
        "sticker", {"link": "https://x.mx/s.webp"})


def test_media_reply_context():
    payload = build_message(TO, "audio", None, {"media_id": "777"}, reply_to=WAMID)
    assert payload["context"] == {"message_id": WAMID}


def test_media_needs_exactly_one_source():
    with pytest.raises(PayloadError, match="link.*media_id"):
        build_message(TO, "image", None, {})
    with pytest.raises(PayloadError, match="no ambos"):
        build_message(TO, "document", None, {"link": "https://x.mx/a.pdf", "media_id": "1"})


def test_caption_over_1024_is_refused():
    with pytest.raises(PayloadError, match="1024"):
        build_message(TO, "image", "c" * 1025, {"media_id": "1"})


# --- interactive list ------------------------------------------------------------------------------

def test_list_from_plain_string_options_uses_titles_as_ids_and_default_button():
    payload = build_message(TO, "list", "¿Qué necesitas?", {"options": ["Pedidos", "Facturas", "Hablar con agente"]})
    assert payload == envelope("interactive", {
        "type": "list",
        "body": {"text": "¿Qué necesitas?"},
        "action": {"button": "Ver opciones", "sections": [{"rows": [
            {"id": "Pedidos", "title": "Pedidos"},
            {"id": "Facturas", "title": "Facturas"},
            {"id": "Hablar con agente", "title": "Hablar con agente"}]}]}})


def test_list_full_with_header_footer_sections_descriptions():
    content = {"button": "Elegir", "header": "Menú", "footer": "Atención 24/7", "sections": [
        {"title": "Ventas", "rows": [{"id": "v1", "title": "Cotizar", "description": "Precio en minutos"}]},
        {"title": "Soporte", "rows": [{"id": "s1", "title": "Falla"}, "Garantía"]}]}
    payload = build_message(TO, "list", "Elige una opción", content, reply_to=WAMID)
    assert payload == envelope("interactive", {
        "type": "list",
        "header": {"type": "text", "text": "Menú"},
        "body": {"text": "Elige una opción"},
        "footer": {"text": "Atención 24/7"},
        "action": {"button": "Elegir", "sections": [
            {"title": "Ventas", "rows": [{"id": "v1", "title": "Cotizar", "description": "Precio en minutos"}]},
            {"title": "Soporte", "rows": [{"id": "s1", "title": "Falla"}, {"id": "Garantía", "title": "Garantía"}]},
        ]}}, context={"message_id": WAMID})


def test_list_ten_rows_is_the_maximum():
    content = {"options": [f"Opción {n}" for n in range(10)]}
    assert len(build_message(TO, "list", "Elige", content)["interactive"]["action"]["sections"][0]["rows"]) == 10
    with pytest.raises(PayloadError, match="máximo 10 opciones en total \\(tiene 11\\)"):
        build_message(TO, "list", "Elige", {"options": [f"Opción {n}" for n in range(11)]})


def test_list_ten_rows_counted_across_sections():
    sections = [{"title": f"S{s}", "rows": [f"s{s}-r{r}" for r in range(4)]} for s in range(3)]
    with pytest.raises(PayloadError, match="tiene 12"):
        build_message(TO, "list", "Elige", {"sections": sections})


def test_list_row_title_limit_24():
    assert build_message(TO, "list", "x", {"options": ["t" * 24]})
    with pytest.raises(PayloadError, match="título de la opción 1.*24 caracteres"):
        build_message(TO, "list", "x", {"options": ["t" * 25]})


def test_list_row_description_limit_72():
    assert build_message(TO, "list", "x", {"options": [{"id": "a", "title": "A", "description": "d" * 72}]})
    with pytest.raises(PayloadError, match="descripción.*72"):
        build_message(TO, "list", "x", {"options": [{"id": "a", "title": "A", "description": "d" * 73}]})


def test_list_button_limit_20():
    assert build_message(TO, "list", "x", {"button": "b" * 20, "options": ["A"]})
    with pytest.raises(PayloadError, match="botón de la lista.*20"):
        build_message(TO, "list", "x", {"button": "b" * 21, "options": ["A"]})


def test_list_other_violations():
    with pytest.raises(PayloadError, match="al menos una sección|no tiene opciones"):
        build_message(TO, "list", "x", {"options": []})
    with pytest.raises(PayloadError, match="repetido"):
        build_message(TO, "list", "x", {"options": ["A", {"id": "A", "title": "Otra"}]})
    with pytest.raises(PayloadError, match="necesita título"):
        build_message(TO, "list", "x", {"sections": [{"rows": ["A"]}, {"rows": ["B"]}]})
    with pytest.raises(PayloadError, match="falta el texto"):
        build_message(TO, "list", None, {"options": ["A"]})
    with pytest.raises(PayloadError, match="sección 1.*24"):
        build_message(TO, "list", "x", {"sections": [{"title": "s" * 25, "rows": ["A"]}]})


# --- interactive reply buttons -------------------------------------------------------------------

def test_buttons_from_strings():
    assert build_message(TO, "buttons", "¿Confirmas tu cita?", {"options": ["Sí", "No"]}) == envelope(
        "interactive", {"type": "button", "body": {"text": "¿Confirmas tu cita?"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "Sí", "title": "Sí"}},
            {"type": "reply", "reply": {"id": "No", "title": "No"}}]}})


def test_buttons_with_ids_text_header_and_footer():
    content = {"header": "Cita", "footer": "Responde con un botón",
               "options": [{"id": "confirmar", "title": "Confirmar"}, {"id": "cambiar", "title": "Cambiar"},
                           {"id": "cancelar", "title": "Cancelar"}]}
    assert build_message(TO, "buttons", "Mañana 10:00", content)["interactive"] == {
        "type": "button", "header": {"type": "text", "text": "Cita"}, "body": {"text": "Mañana 10:00"},
        "footer": {"text": "Responde con un botón"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "confirmar", "title": "Confirmar"}},
            {"type": "reply", "reply": {"id": "cambiar", "title": "Cambiar"}},
            {"type": "reply", "reply": {"id": "cancelar", "title": "Cancelar"}}]}}


def test_buttons_media_headers():
    image = build_message(TO, "buttons", "x", {"header": {"type": "image", "link": "https://x.mx/p.png"},
                                               "options": ["OK"]})
    assert image["interactive"]["header"] == {"type": "image", "image": {"link": "https://x.mx/p.png"}}
    document = build_message(TO, "buttons", "x", {"header": {"type": "document", "media_id": "42",
                                                             "filename": "menu.pdf"}, "options": ["OK"]})
    assert document["interactive"]["header"] == {"type": "document", "document": {"id": "42", "filename": "menu.pdf"}}
    video = build_message(TO, "buttons", "x", {"header": {"video": {"id": "9"}}, "options": ["OK"]})
    assert video["interactive"]["header"] == {"type": "video", "video": {"id": "9"}}


def test_buttons_count_1_to_3():
    with pytest.raises(PayloadError, match="de 1 a 3 botones \\(tiene 0\\)"):
        build_message(TO, "buttons", "x", {"options": []})
    with pytest.raises(PayloadError, match="tiene 4"):
        build_message(TO, "buttons", "x", {"options": ["A", "B", "C", "D"]})


def test_buttons_title_and_id_limits():
    assert build_message(TO, "buttons", "x", {"options": [{"id": "i" * 256, "title": "t" * 20}]})
    with pytest.raises(PayloadError, match="título del botón 1.*20"):
        build_message(TO, "buttons", "x", {"options": ["t" * 21]})
    with pytest.raises(PayloadError, match="id del botón 2.*256"):
        build_message(TO, "buttons", "x", {"options": ["A", {"id": "i" * 257, "title": "B"}]})
    with pytest.raises(PayloadError, match="repetido"):
        build_message(TO, "buttons", "x", {"options": ["A", "A"]})
    with pytest.raises(PayloadError, match="1024"):
        build_message(TO, "buttons", "b" * 1025, {"options": ["A"]})


# --- template, reaction, location, contacts ------------------------------------------------------

def test_template_default_language_es_without_components():
    assert build_message(TO, "template", None, {"name": "bienvenida"}) == envelope(
        "template", {"name": "bienvenida", "language": {"code": "es"}})


def test_template_components_passed_through():
    components = [{"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.mx/h.jpg"}}]},
                  {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#123"}]},
                  {"type": "button", "sub_type": "quick_reply", "index": "0",
                   "parameters": [{"type": "payload", "payload": "SI"}]}]
    payload = build_message(TO, "template", None, {"name": "pedido_listo", "language": "es_MX",
                                                    "components": components})
    assert payload == envelope("template", {"name": "pedido_listo", "language": {"code": "es_MX"},
                                            "components": components})
    assert build_message(TO, "template", None, {"name": "t", "language": {"code": "en_US"}})["template"][
        "language"] == {"code": "en_US"}
    with pytest.raises(PayloadError, match="nombre de la plantilla"):
        build_message(TO, "template", None, {})


def test_reaction_and_removal():
    assert build_message(TO, "reaction", None, {"message_id": WAMID, "emoji": "👍"}) == envelope(
        "reaction", {"message_id": WAMID, "emoji": "👍"})
    assert build_message(TO, "reaction", None, {"message_id": WAMID, "emoji": ""})["reaction"] == {
        "message_id": WAMID, "emoji": ""}
    with pytest.raises(PayloadError, match="wamid"):
        build_message(TO, "reaction", None, {"emoji": "👍"})


def test_location():
    content = {"latitude": "19.4326", "longitude": -99.1332, "name": "Sucursal Centro", "address": "Zócalo s/n"}
    assert build_message(TO, "location", None, content) == envelope("location", {
        "latitude": 19.4326, "longitude": -99.1332, "name": "Sucursal Centro", "address": "Zócalo s/n"})
    with pytest.raises(PayloadError, match="latitude"):
        build_message(TO, "location", None, {"latitude": 1})
    with pytest.raises(PayloadError, match="fuera de rango"):
        build_message(TO, "location", None, {"latitude": 91, "longitude": 0})


def test_contacts_pass_through():
    contact = {"name": {"formatted_name": "Soporte Ejemplo", "first_name": "Soporte"},
               "phones": [{"phone": "+52 55 1234 5678", "type": "WORK", "wa_id": "525512345678"}]}
    assert build_message(TO, "contacts", None, {"contacts": [contact]}) == envelope("contacts", [contact])
    assert build_message(TO, "contacts", None, contact)["contacts"] == [contact]
    with pytest.raises(PayloadError, match="formatted_name"):
        build_message(TO, "contacts", None, {"contacts": [{"phones": []}]})


# --- read receipts / typing ----------------------------------------------------------------------

def test_read_needs_no_recipient():
    assert build_message("", "read", None, {"message_id": WAMID}) == {
        "messaging_product": "whatsapp", "status": "read", "message_id": WAMID}
    with pytest.raises(PayloadError, match="wamid"):
        build_message(TO, "read", None, {})


def test_typing_indicator():
    assert build_message(None, "typing", None, {"message_id": WAMID}) == {
        "messaging_product": "whatsapp", "status": "read", "message_id": WAMID, "typing_indicator": {"type": "text"}}


def test_every_message_kind_has_the_envelope():
    samples = {"text": ("hola", {}), "image": (None, {"link": "https://x.mx/a.jpg"}),
               "audio": (None, {"media_id": "1"}), "video": (None, {"media_id": "1"}),
               "document": (None, {"media_id": "1"}), "sticker": (None, {"media_id": "1"}),
               "list": ("x", {"options": ["A"]}), "buttons": ("x", {"options": ["A"]}),
               "template": (None, {"name": "t"}), "reaction": (None, {"message_id": WAMID, "emoji": "❤️"}),
               "location": (None, {"latitude": 0, "longitude": 0}),
               "contacts": (None, {"name": {"formatted_name": "A"}})}
    for kind, (text, content) in samples.items():
        payload = build_message(TO, kind, text, content)
        assert payload["messaging_product"] == "whatsapp" and payload["recipient_type"] == "individual"
        assert payload["to"] == TO and payload["type"] in (kind, "interactive")
        assert payload[payload["type"]]
