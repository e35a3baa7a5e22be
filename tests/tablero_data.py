"""A small, known set of messages for the dashboard and export tests, stored directly through the models."""
from datetime import datetime

from extensions import db
from models import Chat, Message, Role
from services.inbound import question_answered

A, B, C = "5215500000001", "5215500000002", "5215500000003"
AGENT, AGENT_PASSWORD = "vendedora", "clave-de-ventas-1"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# (chat, created_at, direction, sender, type, text, extra)
MESSAGES = [
    (A, "2026-03-01 09:00:00", "in", "customer", "text", "Hola, quiero cotizar un mesón de cocina",
     {"sentiment_label": "neutral", "sentiment_score": 0.7}),
    (A, "2026-03-01 09:00:30", "out", "bot", "text", "¿Qué medidas tiene?", {"status": "read", "step": "medidas"}),
    (A, "2026-03-01 09:05:00", "in", "customer", "text", "Mesón de 2 metros, ¿cuánto cuesta?",
     {"sentiment_label": "neutral", "sentiment_score": 0.6}),
    (A, "2026-03-01 09:10:00", "out", "agent", "text", "Cuesta 100 dólares", {"status": "delivered", "agent": True}),
    (A, "2026-03-02 14:00:00", "in", "customer", "audio", None,
     {"transcription": "precio del mesón", "transcription_status": "ok", "sentiment_label": "positivo",
      "sentiment_score": 0.8, "media_id": "m-audio-1", "media_mime": "audio/ogg", "media_path": "a/1.ogg",
      "media_status": "ok"}),
    (A, "2026-03-02 14:00:10", "out", "bot", "text", "Le paso con un asesor",
     {"status": "failed", "error_code": 131047, "error_title": "Re-engagement message"}),
    (B, "2026-03-01 20:00:00", "in", "customer", "image", None,
     {"media_id": "m-img-1", "media_mime": "image/jpeg", "media_path": "b/1.jpg", "media_status": "ok"}),
    (B, "2026-03-01 20:01:00", "out", "bot", "text", "Recibimos su foto", {"status": "sent"}),
    (B, "2026-03-03 08:00:00", "in", "customer", "text", "El pedido llegó roto, pésimo servicio",
     {"sentiment_label": "negativo", "sentiment_score": 0.9}),
    (B, "2026-03-03 08:30:00", "out", "agent", "text", "Lo sentimos mucho",
     {"status": "failed", "error_code": 131026, "error_title": "Message undeliverable", "agent": True}),
    (C, "2026-03-02 10:00:00", "in", "customer", "audio", None,
     {"transcription_status": "no transcrito: nota demasiado larga", "media_id": "m-audio-2",
      "media_mime": "audio/ogg"}),
    (C, "2026-03-02 10:00:05", "out", "bot", "text", "No pude escuchar su nota", {"status": "delivered"}),
    (C, "2026-03-02 10:02:00", "in", "customer", "text", "Gracias, excelente atención",
     {"sentiment_label": "positivo", "sentiment_score": 0.95}),
    (C, "2026-02-28 23:59:59", "in", "customer", "text", "fuera del rango", {}),
]
RANGE = {"desde": "2026-03-01", "hasta": "2026-03-03"}


def answered(chat_id: int, sender: str, created: datetime) -> datetime | None:
    """What the outbox writes on an agent's message (messages are added in time order within a chat)."""
    return question_answered(chat_id, created) if sender == "agent" else None


def seed_dashboard(app) -> dict:
    """Roles ventas (chat A) and soporte (chat B), chat C without roles, agent `vendedora` in ventas."""
    from services.auth import create_user
    with app.app_context():
        agent = create_user(AGENT, AGENT_PASSWORD, ["ventas"])
        ventas = db.session.scalar(db.select(Role).filter_by(name="ventas"))
        soporte = Role(name="soporte", keywords="")
        db.session.add(soporte)
        chats = {A: Chat(numero=A, alias="Ana Mesones", roles=[ventas]),
                 B: Chat(numero=B, profile_name="Bruno", roles=[soporte]),
                 C: Chat(numero=C)}
        db.session.add_all(chats.values())
        db.session.flush()
        for index, (numero, created, direction, sender, kind, text, extra) in enumerate(MESSAGES):
            extra = dict(extra)
            status = extra.pop("status", "received" if direction == "in" else "sent")
            agent_id = agent.id if extra.pop("agent", False) else None
            db.session.add(Message(chat_id=chats[numero].id, wamid=f"wamid.T{index}", direction=direction,
                                   sender=sender, type=kind, text=text, status=status, agent_id=agent_id,
                                   answers_at=answered(chats[numero].id, sender, at(created)),
                                   created_at=at(created), updated_at=at(created), **extra))
        db.session.commit()
        ids = {"ventas": ventas.id, "soporte": soporte.id, "agent": agent.id}
        db.session.remove()
    return ids


def login_as(client, username, password):
    from tests.conftest import login
    assert login(client, username, password).status_code == 302


WORDS = ("precio", "mesón", "cocina", "envío", "medidas", "granito", "cuarzo", "instalación", "pedido", "garantía",
         "presupuesto", "color", "blanco", "negro", "entrega", "descuento")


def seed_month(app, year: int = 2026, month: int = 3, chats: int = 25, per_day: int = 60) -> None:
    """A busy, deterministic month across `chats` chats (for screenshots): every chart has something to draw."""
    import random
    from datetime import timedelta
    rng = random.Random(7)
    with app.app_context():
        roles = db.session.scalars(db.select(Role)).all()
        rows = [Chat(numero=f"54911{n:08d}", alias=f"Cliente {n}" if n % 3 else None,
                     roles=[roles[n % len(roles)]] if roles else []) for n in range(chats)]
        db.session.add_all(rows)
        db.session.flush()
        ids = [chat.id for chat in rows]
        messages, start = [], datetime(year, month, 1)
        for day in range(31):
            for _ in range(int(per_day * (0.6 + 0.8 * rng.random()))):
                hour = min(23, max(0, int(rng.gauss(14, 4))))
                created = start + timedelta(days=day, hours=hour, minutes=rng.randrange(60))
                chat_id = ids[min(int(rng.expovariate(0.15)), chats - 1)]
                kind = rng.choices(("text", "audio", "image", "document", "location"), (80, 10, 6, 3, 1))[0]
                sentiment = rng.choices(("positivo", "neutral", "negativo"), (35, 50, 15))[0]
                text = " ".join(rng.sample(WORDS, 3)) if kind == "text" else None
                messages.append(dict(chat_id=chat_id, direction="in", sender="customer", type=kind, text=text,
                                     status="received", sentiment_label=sentiment, sentiment_score=0.7,
                                     transcription="precio del mesón"
                                     if kind == "audio" and rng.random() < .8 else None,
                                     transcription_status="no transcrito: muy larga" if kind == "audio" else None,
                                     created_at=created))
                sender = "agent" if rng.random() < 0.25 else "bot"
                status = rng.choices(("read", "delivered", "sent", "failed"), (55, 25, 12, 8))[0]
                messages.append(dict(chat_id=chat_id, direction="out", sender=sender, type="text", text="respuesta",
                                     status=status, error_code=rng.choice((131047, 131026, 130429))
                                     if status == "failed" else None,
                                     created_at=created + timedelta(seconds=rng.randrange(5, 900 if sender == "agent"
                                                                                          else 20))))
                if sender == "bot" and rng.random() < 0.4:
                    messages.append(dict(chat_id=chat_id, direction="out", sender="bot", type="interactive",
                                         text="menú", status="read", created_at=created + timedelta(seconds=25)))
        messages.sort(key=lambda m: m["created_at"])
        latest = {}  # per chat, its latest customer or agent message: what question_answered reads
        for m in messages:
            if m["sender"] == "agent":
                direction, when = latest.get(m["chat_id"], (None, None))
                m["answers_at"] = when if direction == "in" else None
            if m["direction"] == "in" or m["sender"] == "agent":
                latest[m["chat_id"]] = (m["direction"], m["created_at"])
        keys = {key for message in messages for key in message}
        db.session.execute(Message.__table__.insert(), [{key: m.get(key) for key in keys} | {"attempts": 0,
                                                          "updated_at": m["created_at"]} for m in messages])
        db.session.commit()
        db.session.remove()
