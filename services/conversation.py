"""The bot's side of a conversation: run each customer message through the flow engine and queue the replies."""
import json
import logging

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from extensions import db
from models import Message, Role, Rule
from models.types import utcnow
from services.events import emit
from services.flow import COMMANDS, HANDLERS, ChatState, FlowEngine, Incoming, Reply, RuleSpec
from services.outbox import queue_message
from services.rules import version as rules_version
from services.text import normalize

log = logging.getLogger(__name__)
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
    (one small query otherwise)."""
    cached = current_app.extensions.get("rule_book")
    version = rules_version.current()
    if cached is None or cached.version != version:
        cached = current_app.extensions["rule_book"] = load_rule_book(version)
    return cached


def build_engine(book: RuleBook | None = None) -> FlowEngine:
    config = current_app.config
    return FlowEngine((book or rule_book()).rules_for_step, config["INITIAL_STEP"], config["SESSION_TIMEOUT"],
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


def respond(message: Message) -> None:
    """The inbound handler: feed a customer message to the bot and queue what it answers."""
    incoming = incoming_for(message)
    if incoming is None:
        return
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
