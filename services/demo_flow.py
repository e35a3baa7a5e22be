"""A small demo flow so a new installation can be tried in the simulator at once."""
from sqlalchemy import func, select

from extensions import db
from models import Rule

MENU_OPTIONS = "Ventas|Soporte|Cotizar mesón"
DEMO_RULES = [
    dict(step="inicio", input_text="*", tipo="lista", opciones=MENU_OPTIONS, siguiente_step="menu",
         respuesta="¡Hola! 👋 Bienvenido a Mármoles del Valle. ¿En qué te podemos ayudar?"),
    dict(step="menu", input_text="1,ventas", tipo="botones", opciones="Catálogo|Precios|Volver",
         siguiente_step="ventas", rol_keyword="ventas", respuesta="¡Con gusto! ¿Qué te interesa?"),
    dict(step="menu", input_text="2,soporte,ayuda tecnica", handler="asesor", rol_keyword="soporte",
         siguiente_step="inicio", respuesta="Te comunicamos con soporte. Un asesor te escribirá en breve."),
    dict(step="menu", input_text="3,cotizar,cotizar meson,meson", siguiente_step="cotizar",
         respuesta="Envíame las medidas del mesón como largo x ancho, por ejemplo *2.40 x 0.60* (metros)."),
    dict(step="menu", input_text="*", tipo="lista", opciones=MENU_OPTIONS,
         respuesta="No reconocí esa opción. Elige una del menú:"),
    dict(step="ventas", input_text="catalogo", tipo="documento", siguiente_step="ventas",
         media_url="https://example.com/catalogo-marmoles.pdf", respuesta="Aquí tienes nuestro catálogo 📄"),
    dict(step="ventas", input_text="precios", siguiente_step="ventas",
         respuesta="Los mesones de granito van desde $350.000 por m², instalados. ¿Quieres una cotización? "
                   "Escribe *cotizar*."),
    dict(step="ventas", input_text="cotizar", siguiente_step="cotizar",
         respuesta="Envíame las medidas del mesón como largo x ancho, por ejemplo *2.40 x 0.60* (metros)."),
    dict(step="ventas", input_text="volver,inicio", siguiente_step="inicio", avanzar=True, respuesta="Volvamos al inicio."),
    dict(step="ventas", input_text="*", tipo="botones", opciones="Catálogo|Precios|Volver",
         respuesta="Elige una opción:"),
    dict(step="cotizar", input_text="*", handler="meson", calculo="precio_m2=350000; moneda=$",
         siguiente_step="otra_cosa", avanzar=True, respuesta="Cotización de tu mesón:"),
    dict(step="otra_cosa", input_text="*", tipo="botones", opciones=MENU_OPTIONS, siguiente_step="menu",
         respuesta="¿Te ayudo con algo más?"),
]


def seed_demo_flow() -> int:
    """Create the demo rules when there are no rules at all; returns how many were created."""
    if db.session.scalar(select(func.count()).select_from(Rule)):
        return 0
    for rule in DEMO_RULES:
        db.session.add(Rule(**{"prioridad": 1, "avanzar": False, **rule}))
    db.session.commit()
    return len(DEMO_RULES)
