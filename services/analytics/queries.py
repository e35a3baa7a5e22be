"""One function per chart: SQL aggregates over `messages` with the viewer's filters; no message is loaded."""
from sqlalchemy import and_, case, func, or_, select

from extensions import db
from models import Chat, Message
from services.analytics.filters import Filters
from services.analytics.sql import day_key, day_of, hour_of, median_and_mean, seconds_between
from services.analytics.words import frequent_words

M = Message.__table__
SENDERS = {"customer": "Cliente", "bot": "Bot", "agent": "Agente"}
DELIVERED = ("delivered", "read", "played")
SENT = ("sent",) + DELIVERED
WORD_SAMPLE = 2000
TOP = 10


def _rows(statement):
    return db.session.execute(statement).all()


def per_day(f: Filters) -> dict:
    day = day_of(M.c.created_at)
    counts = {(day_key(d), direction): n for d, direction, n in _rows(
        select(day, M.c.direction, func.count()).where(*f.conditions()).group_by(day, M.c.direction))}
    labels = [d.isoformat() for d in f.days()]
    return {"labels": labels, "entrantes": [counts.get((d, "in"), 0) for d in labels],
            "salientes": [counts.get((d, "out"), 0) for d in labels]}


def per_hour(f: Filters) -> dict:
    hour = hour_of(M.c.created_at)
    counts = dict(_rows(select(hour, func.count()).where(*f.conditions()).group_by(hour)))
    return {"labels": [f"{h:02d}" for h in range(24)], "mensajes": [counts.get(h, 0) for h in range(24)]}


def by_type(f: Filters) -> dict:
    rows = _rows(select(M.c.type, func.count().label("n")).where(*f.conditions())
                 .group_by(M.c.type).order_by(func.count().desc(), M.c.type))
    return {"labels": [t for t, _ in rows], "mensajes": [n for _, n in rows]}


def by_sender(f: Filters) -> dict:
    counts = {(d, s): n for d, s, n in _rows(select(M.c.direction, M.c.sender, func.count())
                                             .where(*f.conditions()).group_by(M.c.direction, M.c.sender))}
    by_sender = {sender: sum(n for (_, s), n in counts.items() if s == sender) for sender in SENDERS}
    return {"labels": list(SENDERS.values()), "mensajes": list(by_sender.values()),
            "entrantes": sum(n for (d, _), n in counts.items() if d == "in"),
            "salientes": sum(n for (d, _), n in counts.items() if d == "out")}


def top_numbers(f: Filters) -> dict:
    top = (select(M.c.chat_id, func.count().label("n")).where(*f.conditions()).group_by(M.c.chat_id)
           .order_by(func.count().desc(), M.c.chat_id).limit(TOP).subquery())
    rows = _rows(select(Chat.numero, Chat.alias, Chat.profile_name, top.c.n).join(top, top.c.chat_id == Chat.id)
                 .order_by(top.c.n.desc(), Chat.id))
    return {"labels": [alias or name or numero for numero, alias, name, _ in rows],
            "numeros": [numero for numero, *_ in rows], "mensajes": [n for *_, n in rows]}


def words(f: Filters) -> dict:
    """Counted over the most recent WORD_SAMPLE customer texts in the range (the only text read in Python)."""
    texts = db.session.scalars(select(M.c.text).where(*f.conditions(), M.c.direction == "in", M.c.text.is_not(None))
                               .order_by(M.c.created_at.desc()).limit(WORD_SAMPLE)).all()
    top = frequent_words(texts, 30)
    return {"labels": [w for w, _ in top], "veces": [n for _, n in top], "muestra": len(texts), "limite": WORD_SAMPLE}


def sentiment(f: Filters) -> dict:
    labels = ("positivo", "neutral", "negativo")
    day = day_of(M.c.created_at)
    rows = _rows(select(day, M.c.sentiment_label, func.count()).where(*f.conditions(), M.c.sentiment_label.in_(labels))
                 .group_by(day, M.c.sentiment_label))
    days = [d.isoformat() for d in f.days()]
    per_day = {(day_key(d), label): n for d, label, n in rows}
    totals = [sum(n for (_, name), n in per_day.items() if name == label) for label in labels]
    return {"labels": list(labels), "mensajes": totals,
            "dias": days, "tendencia": {label: [per_day.get((d, label), 0) for d in days] for label in labels}}


def attention(f: Filters) -> dict:
    per_chat = (select(M.c.chat_id, func.max(case((M.c.sender == "agent", 1), else_=0)).label("agente"))
                .where(*f.conditions()).group_by(M.c.chat_id).subquery())
    total, with_agent = db.session.execute(select(func.count(), func.coalesce(func.sum(per_chat.c.agente), 0))).one()
    with_agent = int(with_agent)
    return {"labels": ["Solo bot", "Con agente"], "chats": [total - with_agent, with_agent], "total": total}


def response_times(f: Filters) -> dict:
    """First response: per chat, first customer message in the range → first reply after it.
    Agent response: per customer message an agent answered, that message → the agent's first reply
    (both in the range)."""
    first_in = (select(M.c.chat_id, func.min(M.c.created_at).label("t0"))
                .where(*f.conditions(), M.c.direction == "in").group_by(M.c.chat_id).subquery())
    reply = M.alias("reply")
    first_reply = (select(first_in.c.chat_id, first_in.c.t0, func.min(reply.c.created_at).label("t1"))
                   .join(reply, and_(reply.c.chat_id == first_in.c.chat_id, reply.c.direction == "out",
                                     reply.c.created_at >= first_in.c.t0, reply.c.created_at < f.end))
                   .group_by(first_in.c.chat_id, first_in.c.t0).subquery())
    first = select(seconds_between(first_reply.c.t0, first_reply.c.t1).label("s")).subquery()

    # Each agent message with the latest customer message before it (a running MAX over the chat's inbound
    # and agent messages, one sorted pass); per customer message, the agent's first reply counts.
    latest_question = func.max(case((M.c.direction == "in", M.c.created_at))).over(
        partition_by=M.c.chat_id, order_by=(M.c.created_at, M.c.id), rows=(None, 0))
    timeline = (select(M.c.chat_id, M.c.sender, M.c.created_at, latest_question.label("t0"))
                .where(*f.conditions(), or_(M.c.direction == "in", M.c.sender == "agent")).subquery())
    per_question = (select(seconds_between(timeline.c.t0, func.min(timeline.c.created_at)).label("s"))
                    .where(timeline.c.sender == "agent", timeline.c.t0.is_not(None))
                    .group_by(timeline.c.chat_id, timeline.c.t0).subquery())
    return {"primera_respuesta": median_and_mean(first, "s"), "respuesta_agente": median_and_mean(per_question, "s")}


def transcriptions(f: Filters) -> dict:
    audio = and_(M.c.direction == "in", M.c.type == "audio")
    done = and_(audio, M.c.transcription.is_not(None), M.c.transcription != "")
    failed = and_(audio, ~done, M.c.transcription_status.is_not(None),
                  M.c.transcription_status.not_in(("pending", "pendiente", "queued", "processing")))
    count = lambda condition: func.coalesce(func.sum(case((condition, 1), else_=0)), 0)  # noqa: E731
    total, ok, bad = db.session.execute(select(func.count(), count(done), count(failed))
                                        .where(*f.conditions(), audio)).one()
    reasons = _rows(select(M.c.transcription_status, func.count()).where(*f.conditions(), failed)
                    .group_by(M.c.transcription_status).order_by(func.count().desc()).limit(5))
    ok, bad = int(ok), int(bad)
    return {"labels": ["Transcritas", "Fallidas u omitidas", "Pendientes"], "notas": [ok, bad, total - ok - bad],
            "total": total, "motivos": [{"motivo": r, "notas": n} for r, n in reasons]}


def delivery(f: Filters) -> dict:
    outbound = M.c.direction == "out"
    count = lambda condition: func.coalesce(func.sum(case((condition, 1), else_=0)), 0)  # noqa: E731
    total, sent, delivered, read, failed = (int(v) for v in db.session.execute(
        select(func.count(), count(M.c.status.in_(SENT)), count(M.c.status.in_(DELIVERED)),
               count(M.c.status.in_(("read", "played"))), count(M.c.status == "failed"))
        .where(*f.conditions(), outbound)).one())
    errors = _rows(select(M.c.error_code, func.max(M.c.error_title), func.count()).where(
        *f.conditions(), outbound, M.c.status == "failed").group_by(M.c.error_code)
        .order_by(func.count().desc(), M.c.error_code).limit(TOP))
    return {"labels": ["Enviados", "Entregados", "Leídos", "Fallidos"], "mensajes": [sent, delivered, read, failed],
            "total": total, "pendientes": total - sent - failed,
            "errores": [{"codigo": code, "titulo": title, "mensajes": n} for code, title, n in errors]}


CHARTS = {
    "por-dia": per_day, "por-hora": per_hour, "tipos": by_type, "remitentes": by_sender, "top-numeros": top_numbers,
    "palabras": words, "sentimiento": sentiment, "atencion": attention, "respuesta": response_times,
    "transcripciones": transcriptions, "entregas": delivery,
}
