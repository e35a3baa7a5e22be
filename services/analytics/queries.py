"""One function per chart: SQL aggregates over `messages` with the viewer's filters; no message is loaded."""
from collections import Counter

from sqlalchemy import and_, case, false, func, or_, select

from extensions import db
from models import Chat, Message
from services.analytics.filters import Filters
from services.analytics.sql import (day_key, day_of, hour_of, mariadb, median_and_mean, scalars_within,
                                    seconds_between)
from services.analytics.words import frequent_words

M = Message.__table__
SENDERS = {"customer": "Cliente", "bot": "Bot", "agent": "Agente"}
DELIVERED = ("delivered", "read", "played")
SENT = ("sent",) + DELIVERED
WORD_SAMPLE = 2000
WORD_WALK = 50_000
TOP = 10
MAX_TYPE_PAIRS = 40


def _rows(statement):
    return db.session.execute(statement).all()


def per_day(f: Filters) -> dict:
    """One query per direction: each reads the narrow (direction, created_at) index instead of the wide one."""
    day = day_of(M.c.created_at)
    labels = [d.isoformat() for d in f.days()]
    series = {}
    for direction, name in (("in", "entrantes"), ("out", "salientes")):
        counts = {day_key(d): n for d, n in _rows(
            select(day, func.count()).where(M.c.direction == direction, *f.conditions()).group_by(day))}
        series[name] = [counts.get(d, 0) for d in labels]
    return {"labels": labels, **series}


def per_hour(f: Filters) -> dict:
    hour = hour_of(M.c.created_at)
    counts = dict(_rows(select(hour, func.count()).where(*f.conditions()).group_by(hour)))
    return {"labels": [f"{h:02d}" for h in range(24)], "mensajes": [counts.get(h, 0) for h in range(24)]}


def by_type(f: Filters) -> dict:
    """Over some chats, one pass over their messages. Over all of them, a count per (type, direction) stored, each
    a range of ix_messages_type_dir_created; the pairs come from a loose scan of that index's first columns (a
    few dozen at most; past MAX_TYPE_PAIRS, one grouped pass again)."""
    pairs = [] if f.some_chats else _rows(select(M.c.type, M.c.direction).distinct().limit(MAX_TYPE_PAIRS + 1))
    if pairs and len(pairs) <= MAX_TYPE_PAIRS:
        counts = Counter()
        for kind, direction in pairs:
            counts[kind] += db.session.scalar(select(func.count()).where(M.c.type == kind, M.c.direction == direction,
                                                                         *f.conditions()))
    else:
        counts = dict(_rows(select(M.c.type, func.count()).where(*f.conditions()).group_by(M.c.type)))
    rows = sorted(((kind, n) for kind, n in counts.items() if n), key=lambda row: (-row[1], row[0]))
    return {"labels": [t for t, _ in rows], "mensajes": [n for _, n in rows]}


def by_sender(f: Filters) -> dict:
    """Customers write every inbound message, the bot and agents every outbound one. Over some chats, one pass
    over their messages; over all of them, a count per sender, each a range of the (sender, created_at) index."""
    if f.some_chats:
        counts = dict(_rows(select(M.c.sender, func.count()).where(*f.conditions()).group_by(M.c.sender)))
    else:
        counts = {sender: db.session.scalar(select(func.count()).where(M.c.sender == sender, *f.conditions()))
                  for sender in SENDERS}
    mensajes = [counts.get(sender, 0) for sender in SENDERS]
    return {"labels": list(SENDERS.values()), "mensajes": mensajes,
            "entrantes": counts.get("customer", 0), "salientes": counts.get("bot", 0) + counts.get("agent", 0)}


def top_numbers(f: Filters) -> dict:
    top = (select(M.c.chat_id, func.count().label("n")).where(*f.conditions()).group_by(M.c.chat_id)
           .order_by(func.count().desc(), M.c.chat_id).limit(TOP).subquery())
    rows = _rows(select(Chat.numero, Chat.alias, Chat.profile_name, top.c.n).join(top, top.c.chat_id == Chat.id)
                 .order_by(top.c.n.desc(), Chat.id))
    return {"labels": [alias or name or numero for numero, alias, name, _ in rows],
            "numeros": [numero for numero, *_ in rows], "mensajes": [n for *_, n in rows]}


def words(f: Filters) -> dict:
    """Counted over the most recent WORD_SAMPLE customer texts in the range (the only text read in Python)."""
    latest = (select(M.c.text).where(*f.conditions(), M.c.direction == "in", M.c.text.is_not(None))
              .order_by(M.c.created_at.desc()).limit(WORD_SAMPLE))
    texts = None
    if mariadb() and f.numero is None and not (f.viewer.is_admin and f.role_id is None):
        # With a role limit MariaDB starts from the roles' chats and sorts all their texts of the range. Walking
        # the newest customer messages backwards instead stops at WORD_SAMPLE, soon unless the roles have few
        # messages: then it gives up after WORD_WALK rows and the usual plan answers.
        walk = latest.with_hint(M, "FORCE INDEX (ix_messages_direction_created_at)", dialect_name="mysql")
        texts = scalars_within(walk, WORD_WALK, optimizer_switch="semijoin=off")
    if texts is None:
        texts = db.session.scalars(latest).all()
    top = frequent_words(texts, 30)
    return {"labels": [w for w, _ in top], "veces": [n for _, n in top], "muestra": len(texts), "limite": WORD_SAMPLE}


def sentiment(f: Filters) -> dict:
    """Over some chats, one pass over their messages; over all of them, one range of ix_messages_sentiment_day per
    label."""
    labels = ("positivo", "neutral", "negativo")
    day = day_of(M.c.created_at)
    if f.some_chats:
        rows = _rows(select(day, M.c.sentiment_label, func.count())
                     .where(*f.conditions(), M.c.sentiment_label.in_(labels)).group_by(day, M.c.sentiment_label))
    else:
        rows = [(d, label, n) for label in labels for d, n in _rows(
            select(day, func.count()).where(M.c.sentiment_label == label, *f.conditions()).group_by(day))]
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
    (both in the range; see services.inbound.question_answered)."""
    def first(direction):  # per chat, its first message of the range in one direction (a loose index scan)
        return (select(M.c.chat_id, func.min(M.c.created_at).label("at"))
                .where(*f.conditions(), M.c.direction == direction).group_by(M.c.chat_id).subquery())
    first_in, first_out = first("in"), first("out")
    reply = M.alias("reply")
    # Usually the chat's first reply of the range already comes after its first question; only otherwise
    # (a reply to a question before the range, a message the business started) look for the first one after it.
    later_reply = (select(func.min(reply.c.created_at))
                   .where(reply.c.chat_id == first_in.c.chat_id, reply.c.direction == "out",
                          reply.c.created_at >= first_in.c.at, reply.c.created_at < f.end).scalar_subquery())
    first_reply = case((first_out.c.at.is_(None), None), (first_out.c.at >= first_in.c.at, first_out.c.at),
                       else_=later_reply)
    first_response = (select(seconds_between(first_in.c.at, first_reply).label("s"))
                      .select_from(first_in.outerjoin(first_out, first_out.c.chat_id == first_in.c.chat_id))
                      .subquery())

    # Each agent message that first answered a customer message keeps that message's time (answers_at, written
    # with it): a range scan of one index, questions asked before the range left out.
    per_question = (select(seconds_between(M.c.answers_at, M.c.created_at).label("s"))
                    .where(*f.conditions(), M.c.sender == "agent", M.c.answers_at >= f.start).subquery())
    return {"primera_respuesta": median_and_mean(first_response, "s"),
            "respuesta_agente": median_and_mean(per_question, "s")}


def transcriptions(f: Filters) -> dict:
    """One pass over the range's voice notes, grouped by outcome and status (a handful of groups)."""
    done = and_(M.c.transcription.is_not(None), M.c.transcription != "")
    outcome = case((done, "ok"), (and_(M.c.transcription_status.is_not(None), M.c.transcription_status.not_in(
        ("pending", "pendiente", "queued", "processing"))), "failed"), else_="pending")
    groups = _rows(select(outcome.label("outcome"), M.c.transcription_status, func.count())
                   .where(*f.conditions(), M.c.direction == "in", M.c.type == "audio")
                   .group_by(outcome, M.c.transcription_status))
    count = lambda name: sum(n for o, _, n in groups if o == name)  # noqa: E731
    total, ok, bad = sum(n for *_, n in groups), count("ok"), count("failed")
    reasons = sorted(((status, n) for o, status, n in groups if o == "failed"), key=lambda r: (-r[1], r[0]))[:5]
    return {"labels": ["Transcritas", "Fallidas u omitidas", "Pendientes"], "notas": [ok, bad, total - ok - bad],
            "total": total, "motivos": [{"motivo": r, "notas": n} for r, n in reasons]}


def delivery(f: Filters) -> dict:
    """One pass over the range's outbound messages grouped by status and error code (a handful of groups);
    the titles of the top errors from the failed messages only."""
    groups = _rows(select(M.c.status, M.c.error_code, func.count()).where(*f.conditions(), M.c.direction == "out")
                   .group_by(M.c.status, M.c.error_code))
    count = lambda statuses: sum(n for status, _, n in groups if status in statuses)  # noqa: E731
    total, failed = sum(n for *_, n in groups), count(("failed",))
    per_code = {}
    for status, code, n in groups:
        if status == "failed":
            per_code[code] = per_code.get(code, 0) + n
    top = sorted(per_code.items(), key=lambda item: (-item[1], item[0] is not None, item[0] or 0))[:TOP]
    titles = dict(_rows(select(M.c.error_code, func.max(M.c.error_title)).where(
        *f.conditions(), M.c.direction == "out", M.c.status == "failed",
        or_(M.c.error_code.in_([code for code, _ in top if code is not None]),
            M.c.error_code.is_(None) if None in dict(top) else false()))
        .group_by(M.c.error_code).with_hint(M, "FORCE INDEX (ix_messages_out_failed)", dialect_name="mysql"))
    ) if top else {}
    sent, delivered, read = count(SENT), count(DELIVERED), count(("read", "played"))
    return {"labels": ["Enviados", "Entregados", "Leídos", "Fallidos"], "mensajes": [sent, delivered, read, failed],
            "total": total, "pendientes": total - sent - failed,
            "errores": [{"codigo": code, "titulo": titles.get(code), "mensajes": n} for code, n in top]}


CHARTS = {
    "por-dia": per_day, "por-hora": per_hour, "tipos": by_type, "remitentes": by_sender, "top-numeros": top_numbers,
    "palabras": words, "sentimiento": sentiment, "atencion": attention, "respuesta": response_times,
    "transcripciones": transcriptions, "entregas": delivery,
}
