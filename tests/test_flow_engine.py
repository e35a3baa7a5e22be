"""The flow engine alone: plain Python, no app, no database."""
from datetime import datetime, timedelta

from services.flow import COMMANDS, HANDLERS, ChatState, FlowEngine, Incoming, RuleSpec
from services.text import normalize

NOW = datetime(2026, 1, 1, 12, 0, 0)


def engine(*rules, timeout=1800, max_hops=10):
    numbered = [RuleSpec(**{"id": index + 1, **rule}) for index, rule in enumerate(rules)]
    return FlowEngine(lambda step: [r for r in numbered if r.step == step], "inicio", timeout, COMMANDS, HANDLERS,
                      max_hops)


MENU = [
    dict(step="inicio", input_text="*", respuesta="Hola, elige:", tipo="lista", opciones="Ventas|Soporte",
         siguiente_step="menu"),
    dict(step="menu", input_text="1, ventas", respuesta="Ventas: ¿qué buscas?", siguiente_step="ventas"),
    dict(step="menu", input_text="2,Soporte técnico,soporte", respuesta="Soporte", siguiente_step="soporte",
         rol_keyword="soporte"),
    dict(step="menu", input_text="*", respuesta="No te entendí, elige del menú", prioridad=1),
]


def run(flow, text="", state=None, now=NOW, **incoming):
    return flow.handle(state or ChatState(), Incoming(text=text, **incoming), now)


def test_normalize_folds_case_accents_punctuation_and_spaces():
    assert normalize("  ¡Menú,   PRINCIPAL!  ") == "menu principal"
    assert normalize("Sí.") == "si" and normalize(None) == ""


def test_new_customer_gets_the_initial_steps_wildcard_answer():
    outcome = run(engine(*MENU), "hola")
    assert [(r.kind, r.text, r.options) for r in outcome.replies] == [("list", "Hola, elige:", ["Ventas", "Soporte"])]
    assert outcome.state.step == "menu" and outcome.entry_step == "inicio" and outcome.rule_ids == [1]


def test_comma_inputs_match_after_normalisation():
    flow = engine(*MENU)
    for text in ("1", "VENTAS!", " ventas "):
        assert run(flow, text, ChatState(step="menu")).replies[0].text == "Ventas: ¿qué buscas?"
    assert run(flow, "soporte tecnico", ChatState(step="menu")).state.step == "soporte"


def test_wildcard_is_tried_after_every_other_rule_whatever_its_priority():
    outcome = run(engine(*MENU), "quiero algo", ChatState(step="menu"))
    assert outcome.replies[0].text == "No te entendí, elige del menú" and outcome.state.step == "menu"


def test_lower_prioridad_wins_between_matching_rules():
    flow = engine(dict(step="s", input_text="hola", respuesta="segunda", prioridad=2),
                  dict(step="s", input_text="hola,buenas", respuesta="primera", prioridad=1))
    assert run(flow, "hola", ChatState(step="s")).replies[0].text == "primera"


def test_list_and_button_replies_match_by_id_or_title():
    flow = engine(*MENU)
    by_id = run(flow, "", ChatState(step="menu"), reply_id="Ventas", reply_title="Ventas")
    by_title = run(flow, "", ChatState(step="menu"), reply_id="row-7", reply_title="Soporte técnico")
    assert by_id.state.step == "ventas" and by_title.state.step == "soporte"


def test_no_rule_and_no_wildcard_gives_a_helpful_answer_and_keeps_the_step():
    outcome = run(engine(dict(step="s", input_text="si", respuesta="ok")), "quizas", ChatState(step="s"))
    assert "menu" in outcome.replies[0].text and outcome.state.step == "s"


def test_avanzar_cascades_through_three_steps():
    flow = engine(dict(step="inicio", input_text="*", respuesta="uno", siguiente_step="a", avanzar=True),
                  dict(step="a", input_text="*", respuesta="dos", siguiente_step="b", avanzar=True),
                  dict(step="b", input_text="*", respuesta="tres", siguiente_step="c", avanzar=True),
                  dict(step="c", input_text="*", respuesta="cuatro", siguiente_step="fin"),
                  dict(step="c", input_text="x", respuesta="no"))
    outcome = run(flow, "hola")
    assert [r.text for r in outcome.replies] == ["uno", "dos", "tres", "cuatro"]
    assert outcome.state.step == "fin" and not outcome.loop_stopped


def test_a_cascade_loop_is_stopped_by_the_hop_limit():
    flow = engine(dict(step="inicio", input_text="*", respuesta="ping", siguiente_step="b", avanzar=True),
                  dict(step="b", input_text="*", respuesta="pong", siguiente_step="inicio", avanzar=True), max_hops=5)
    outcome = run(flow, "hola")
    assert outcome.loop_stopped and len(outcome.replies) == 5


def test_global_command_mid_flow_restarts_at_the_initial_step():
    outcome = run(engine(*MENU), "Reiniciar", ChatState(step="ventas"))
    assert outcome.command == "reiniciar" and outcome.replies[0].text == "Hola, elige:"
    assert outcome.state.step == "menu"
    assert run(engine(*MENU), "MENÚ", ChatState(step="soporte")).replies[0].kind == "list"


def test_help_lists_the_commands():
    text = run(engine(*MENU), "ayuda", ChatState(step="menu")).replies[0].text
    assert all(f"*{name}*" in text for name in ("reiniciar", "menu", "ayuda", "asesor"))


def test_session_timeout_resets_to_the_initial_step_and_ends_takeover():
    stale = ChatState(step="ventas", mode="human", last_activity=NOW - timedelta(seconds=1801))
    outcome = run(engine(*MENU), "1", stale)
    assert outcome.timed_out and outcome.replies[0].text == "Hola, elige:" and outcome.state.mode == "bot"
    fresh = ChatState(step="menu", last_activity=NOW - timedelta(seconds=1799))
    assert not run(engine(*MENU), "1", fresh).timed_out


def test_rule_role_keyword_is_reported():
    assert run(engine(*MENU), "2", ChatState(step="menu")).roles == ["soporte"]


def test_asesor_command_and_handler_hand_over_and_the_bot_then_stays_quiet():
    flow = engine(*MENU, dict(step="menu", input_text="humano ya", respuesta="Un momento", handler="asesor",
                              siguiente_step="inicio"))
    outcome = run(flow, "asesor", ChatState(step="menu"))
    assert outcome.handover and outcome.state.mode == "human" and outcome.replies
    by_rule = run(flow, "humano ya", ChatState(step="menu"))
    assert by_rule.handover and [r.text for r in by_rule.replies] == ["Un momento"] and by_rule.state.step == "inicio"
    silent = run(flow, "hola?", ChatState(step="menu", mode="human", last_activity=NOW))
    assert silent.replies == [] and silent.state.mode == "human"


def test_countertop_quote_handler_reads_meters_and_centimetres():
    flow = engine(dict(step="cotizar", input_text="*", respuesta="Tu cotización:", handler="meson",
                       calculo="precio_m2=100000", siguiente_step="menu"))
    meters = run(flow, "mide 2.40 x 0.60", ChatState(step="cotizar"))
    assert "1.44 m²" in meters.replies[0].text and "$144.000" in meters.replies[0].text
    assert meters.replies[0].text.startswith("Tu cotización:") and meters.state.step == "menu"
    centimetres = run(flow, "240x60", ChatState(step="cotizar"))
    assert "1.44 m²" in centimetres.replies[0].text
    again = run(flow, "no sé", ChatState(step="cotizar"))
    assert "2.40 x 0.60" in again.replies[0].text and again.state.step == "cotizar"


def test_media_rule_reply_carries_its_url():
    flow = engine(dict(step="inicio", input_text="*", respuesta="Catálogo", tipo="documento",
                       media_url="https://example.com/catalogo.pdf"))
    reply = run(flow, "x").replies[0]
    assert (reply.kind, reply.media_url, reply.text) == ("document", "https://example.com/catalogo.pdf", "Catálogo")


def test_closed_chat_reopens_at_the_start():
    outcome = run(engine(*MENU), "hola", ChatState(step="ventas", mode="closed"))
    assert outcome.state.mode == "bot" and outcome.replies[0].text == "Hola, elige:"


def test_an_unheard_voice_note_is_asked_for_in_writing_without_moving_the_chat():
    from services.flow.engine import NOT_HEARD
    flow = engine(*MENU)
    outcome = run(flow, state=ChatState(step="menu"), unheard=True)
    assert [r.text for r in outcome.replies] == [NOT_HEARD] and outcome.state.step == "menu"
    assert outcome.rule_ids == [] and not outcome.roles
    assert run(flow, state=ChatState(step="menu", mode="human"), unheard=True).replies == []
    late = run(flow, state=ChatState(step="ventas", mode="human", last_activity=NOW - timedelta(hours=2)),
               unheard=True)
    assert [r.text for r in late.replies] == [NOT_HEARD] and late.state.step == "inicio" and late.timed_out
