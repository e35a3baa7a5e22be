"""The bot's side of a conversation: run each customer message through the flow engine and queue the replies."""
import json
import logging
import time
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from extensions import db
from models import ChatLease, Message, Role, Rule
from models.types import utcnow
from services import metrics, sentiment, transcription
from services.events import emit
from services.flow import COMMANDS, HANDLERS, ChatState, FlowEngine, Incoming, Reply, RuleSpec
from services.outbox import queue_message
from services.pipeline import count_failure
from services.rules import version as rules_version
from services.text import normalize

log = logging.getLogger(__name__)
BATCH_BOOK = "rule_book"  # db.session.info key: the book `answer_stored` read for its batch
TYPED_KINDS = ("text", "image", "video", "document", "sticker", "location", "contacts", "request_welcome")


class RuleBook:
    """Every rule of the bot as the flow engine reads them, by step, as of one version of the rules."""

    def __init__(self, version: int, by_step: dict[str, list[RuleSpec]]):
        self.version, self.by_step = version, by_step

    def rules_for_step(self, step: str) -> list[RuleSpec]:
        return self.by_step.get(step, [])


def load_rule_book(version: int) -> RuleBook:
    by_step: dict[str, list[RuleSpec]] = {}
    # Their media in one more query, not one per rule.
    for r in db.session.scalars(select(Rule).options(selectinload(Rule.media))):
        by_step.setdefault(r.step, []).append(RuleSpec(
            step=r.step, input_text=r.input_text, respuesta=r.respuesta or "", tipo=r.tipo, opciones=r.opciones,
            siguiente_step=r.siguiente_step, prioridad=r.prioridad, avanzar=bool(r.avanzar),
            rol_keyword=r.rol_keyword, handler=r.handler, calculo=r.calculo, media_url=r.media_url,
            media_path=r.media[0].path if r.media else None, id=r.id))
    return RuleBook(version, by_step)


def rule_book() -> RuleBook:
    """The rules, read from the database only when their version changed since this process last read them
    (one small query otherwise; none inside `answer_stored`, which reads the version once for its batch)."""
    if BATCH_BOOK in db.session.info:
        return db.session.info[BATCH_BOOK]
    cached = current_app.extensions.get("rule_book")
    version = rules_version.current()
    if cached is None or cached.version != version:
        cached = current_app.extensions["rule_book"] = load_rule_book(version)
    return cached


def build_engine() -> FlowEngine:
    config = current_app.config
    return FlowEngine(rule_book().rules_for_step, config["INITIAL_STEP"], config["SESSION_TIMEOUT"],
                      COMMANDS, HANDLERS)


def incoming_for(message: Message) -> Incoming | None:
    """What the bot should read in a message, or None when the message is not for the bot (reactions...)."""
    content = message.content_data
    if message.type == "interactive":
        if content.get("kind") in ("button_reply", "list_reply"):
            return Incoming(reply_id=content.get("id"), reply_title=content.get("title"))
        return Incoming(text=message.text or "") if message.text else None
    if message.type == "button":
        return Incoming(text=message.text or "", reply_id=content.get("payload"))
    if message.type == "audio":  # final here: transcribed, or not with the reason on the message
        return Incoming(text=message.transcription) if message.transcription else Incoming(unheard=True)
    if message.type in TYPED_KINDS:
        return Incoming(text=message.text or "")
    return None


def reply_content(reply: Reply) -> dict:
    content = {}
    if reply.options:
        content["options"] = reply.options
    if reply.media_url:
        content["link"] = reply.media_url
    if reply.media_path:
        content["media_path"] = reply.media_path
    return content


def role_for_keyword(keyword: str) -> Role:
    """The role named by a keyword or listing it among its keywords; created when there is none."""
    wanted = normalize(keyword)
    for role in db.session.scalars(select(Role)):
        if wanted == normalize(role.name) or wanted in {normalize(k) for k in role.keywords.split(",")}:
            return role
    role = Role(name=keyword, keywords="")
    db.session.add(role)
    return role


def attach_roles(chat, keywords: list[str]) -> None:
    for keyword in keywords:
        role = role_for_keyword(keyword)
        if role not in chat.roles:
            chat.roles.append(role)


def respond(message: Message) -> int:
    """The inbound handler: feed a customer message to the bot and queue what it answers; how many replies."""
    incoming = incoming_for(message)
    if incoming is None:
        return 0
    chat = message.chat
    state = ChatState(step=chat.step, mode=chat.state, last_activity=chat.last_activity_at,
                      context=json.loads(chat.context) if chat.context else {})
    outcome = build_engine().handle(state, incoming, utcnow())
    message.step = outcome.entry_step
    message.rule_id = outcome.rule_ids[0] if outcome.rule_ids else None
    chat.step, chat.state, chat.last_activity_at = outcome.state.step, outcome.state.mode, outcome.state.last_activity
    chat.context = json.dumps(outcome.state.context) if outcome.state.context else None
    if outcome.handover:
        chat.taken_over_at = utcnow()
    attach_roles(chat, outcome.roles)
    emit("chat", chat_id=chat.id)
    for reply in outcome.replies:
        queue_message(chat.id, reply.kind, reply.text, reply_content(reply), sender="bot", rule_id=reply.rule_id,
                      step=reply.step)
    log.info("bot answered wamid=%s step=%s->%s rules=%s replies=%d command=%s handover=%s", message.wamid,
             outcome.entry_step, outcome.state.step, outcome.rule_ids, len(outcome.replies), outcome.command,
             outcome.handover)
    return len(outcome.replies)


@dataclass
class BotPass:
    """What `answer_stored` did: the messages it answered (and tagged), the chats it left for
    `services.pipeline.process_chat` (busy, waiting for an older message or a transcription, or failed), and the
    chats with new replies to send."""
    answered: set[int] = field(default_factory=set)
    tagged: set[int] = field(default_factory=set)
    left: set[int] = field(default_factory=set)
    to_send: set[int] = field(default_factory=set)


def answer_stored(message_ids: list[int]) -> BotPass:
    """Answer the customer messages the drain has just stored, inside its transaction: chat by chat, each chat's
    messages in arrival order, rules from the in-memory book (read once for the batch), offline sentiment in
    memory. The chats' lease rows are locked (SELECT ... FOR UPDATE) for the rest of the transaction, so no
    `process_chat` can work on them meanwhile; a chat that one is working on already, or that still has an older
    message waiting, is left to it, as is every message from a voice note on (it waits for its transcription).
    A message whose handler fails is rolled back to its savepoint, its attempt counted, and the rest of its chat
    left to `process_chat`, which retries it."""
    done = BotPass()
    if not message_ids:
        return done
    messages = db.session.scalars(select(Message).where(Message.id.in_(message_ids))
                                  .options(joinedload(Message.chat)).order_by(Message.id)).all()
    by_chat: dict[int, list[Message]] = {}
    for message in messages:
        by_chat.setdefault(message.chat_id, []).append(message)
    now = utcnow()
    leases = db.session.execute(select(ChatLease.chat_id, ChatLease.holder, ChatLease.expires_at)
                                .where(ChatLease.chat_id.in_(by_chat)).with_for_update()).all()
    busy = {lease.chat_id for lease in leases if lease.holder is not None and lease.expires_at >= now}
    oldest_waiting = dict(db.session.execute(
        select(Message.chat_id, func.min(Message.id)).where(Message.chat_id.in_(by_chat), Message.direction == "in",
                                                            Message.processed_at.is_(None))
        .group_by(Message.chat_id)).all())
    handle, tag = current_app.extensions["inbound_handler"], sentiment.in_memory_tagger()
    db.session.info[BATCH_BOOK] = rule_book()
    try:
        for chat_id, chat_messages in by_chat.items():
            if chat_id in busy or oldest_waiting.get(chat_id, chat_messages[0].id) < chat_messages[0].id:
                done.left.add(chat_id)
                continue
            _answer_chat(chat_messages, handle, tag, done)
    finally:
        db.session.info.pop(BATCH_BOOK, None)
    return done


def _answer_chat(messages: list[Message], handle, tag, done: BotPass) -> None:
    """Answer one chat's new messages in order, each in its savepoint (`handle` is the app's inbound handler,
    `respond`). At a voice note, or at a message whose handler fails (its attempt counted, as process_chat
    counts them), the chat stops here and the rest is left to process_chat."""
    for message in messages:
        if transcription.needs_transcription(message):
            done.left.add(message.chat_id)
            return
        started = time.perf_counter()
        try:
            with db.session.begin_nested():
                # Set before the handler, whose reply flushes them with its own changes: one UPDATE per row.
                message.processed_at = utcnow()
                if tag is not None and message.text and message.type != "edit":
                    tag(message)
                replied = handle(message)
        except Exception as error:
            metrics.observe_message(time.perf_counter() - started, "failed")
            log.warning("the bot could not answer message %s in the drain: %r; left to process_chat", message.id,
                        error)
            count_failure(message.id, error)
            done.left.add(message.chat_id)
            return
        metrics.observe_message(time.perf_counter() - started, "ok")
        if replied:
            done.to_send.add(message.chat_id)
        done.answered.add(message.id)
        if tag is not None and message.text and message.type != "edit":
            done.tagged.add(message.id)
