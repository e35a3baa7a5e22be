"""The flow engine: from a customer's message and the chat's state to the bot's replies.

Plain Python (no Flask, no database): rules come from a `rules_for(step)` callable,
commands and handlers from registries. DESIGN.md §4 is the contract.
"""
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable

from services.text import normalize

log = logging.getLogger(__name__)
MAX_HOPS = 10
WILDCARD = "*"
KIND_OF_TIPO = {"texto": "text", "lista": "list", "botones": "buttons", "imagen": "image",
                "documento": "document", "audio": "audio", "video": "video"}
NOT_UNDERSTOOD = "No entendí tu mensaje. Escribe *menu* para ver las opciones o *asesor* para hablar con una persona."
NOT_HEARD = "No pude escuchar tu nota de voz. ¿Me lo escribes, por favor?"


@dataclass(frozen=True)
class RuleSpec:
    step: str
    input_text: str
    respuesta: str = ""
    tipo: str = "texto"
    opciones: str | None = None
    siguiente_step: str | None = None
    prioridad: int = 1
    avanzar: bool = False
    rol_keyword: str | None = None
    handler: str | None = None
    calculo: str | None = None
    media_url: str | None = None
    media_path: str | None = None
    id: int | None = None

    @property
    def is_wildcard(self) -> bool:
        return self.input_text.strip() == WILDCARD

    @property
    def inputs(self) -> frozenset[str]:
        return frozenset(filter(None, (normalize(part) for part in self.input_text.split(","))))

    @property
    def options(self) -> list[str]:
        return [part.strip() for part in (self.opciones or "").split("|") if part.strip()]


@dataclass
class ChatState:
    step: str | None = None
    mode: str = "bot"  # bot | human | closed
    last_activity: datetime | None = None
    context: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Incoming:
    """What the customer said: typed text (or a transcription), or the id/title of a reply they tapped; `unheard`
    for a voice note that could not be transcribed (the bot asks for it in writing and stays on its step)."""
    text: str = ""
    reply_id: str | None = None
    reply_title: str | None = None
    unheard: bool = False

    @property
    def candidates(self) -> set[str]:
        # A reply id or title comes from the payload as is: only text is read.
        return {normalize(value) for value in (self.text, self.reply_id, self.reply_title)
                if value and isinstance(value, str)} or {""}


@dataclass
class Reply:
    kind: str
    text: str
    options: list[str] = field(default_factory=list)
    media_url: str | None = None
    media_path: str | None = None
    rule_id: int | None = None
    step: str | None = None


@dataclass
class Outcome:
    state: ChatState
    replies: list[Reply] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    rule_ids: list[int] = field(default_factory=list)
    entry_step: str | None = None
    command: str | None = None
    handover: bool = False
    timed_out: bool = False
    loop_stopped: bool = False


@dataclass
class HandlerResult:
    """What a custom handler answers: the reply text, and whether to stay in the step or hand over."""
    text: str | None = None
    stay: bool = False
    handover: bool = False


@dataclass
class Turn:
    """What handlers and commands see of the message being handled."""
    incoming: Incoming
    state: ChatState
    rule: RuleSpec | None
    parameter: str | None

    @property
    def text(self) -> str:
        return self.incoming.text or self.incoming.reply_title or ""


Handler = Callable[[Turn], HandlerResult | str | None]


@dataclass
class Command:
    name: str
    run: Callable[["FlowEngine", Turn, Outcome], None]
    aliases: tuple[str, ...] = ()
    help: str = ""


class FlowEngine:
    def __init__(self, rules_for: Callable[[str], list[RuleSpec]], initial_step: str, session_timeout: int,
                 commands: dict[str, Command], handlers: dict[str, Handler], max_hops: int = MAX_HOPS):
        self.rules_for = rules_for
        self.initial_step = initial_step
        self.session_timeout = timedelta(seconds=session_timeout)
        self.commands = {normalize(alias): command for command in commands.values()
                         for alias in (command.name, *command.aliases)}
        self.handlers = handlers
        self.max_hops = max_hops

    def handle(self, state: ChatState, incoming: Incoming, now: datetime) -> Outcome:
        """Run one customer message through timeout, commands, rules, handlers and cascades."""
        state = replace(state, context=dict(state.context))
        outcome = Outcome(state=state)
        if state.last_activity and now - state.last_activity > self.session_timeout:
            state.step, state.mode, state.context = self.initial_step, "bot", {}
            outcome.timed_out = True
        if state.mode == "closed":
            state.step, state.mode = self.initial_step, "bot"
        state.step = state.step or self.initial_step
        state.last_activity = now
        outcome.entry_step = state.step
        if state.mode == "human":
            return outcome
        if incoming.unheard:
            outcome.replies.append(Reply("text", NOT_HEARD, step=state.step))
            return outcome
        command = self._command(incoming)
        if command:
            outcome.command = command.name
            command.run(self, Turn(incoming, state, None, None), outcome)
            return outcome
        rule = self.match(state.step, incoming)
        if rule is None:
            outcome.replies.append(Reply("text", NOT_UNDERSTOOD, step=state.step))
            return outcome
        self._apply(rule, Turn(incoming, state, rule, rule.calculo), outcome)
        return outcome

    def _command(self, incoming: Incoming) -> Command | None:
        for candidate in incoming.candidates:
            if candidate in self.commands:
                return self.commands[candidate]
        return None

    def match(self, step: str, incoming: Incoming) -> RuleSpec | None:
        """The first rule of the step (by prioridad) accepting the message; `*` rules only after all others."""
        rules = sorted(self.rules_for(step), key=lambda r: (r.is_wildcard, r.prioridad, r.id or 0))
        candidates = incoming.candidates
        for rule in rules:
            if rule.is_wildcard or rule.inputs & candidates:
                return rule
        return None

    def wildcard(self, step: str) -> RuleSpec | None:
        rules = sorted((r for r in self.rules_for(step) if r.is_wildcard), key=lambda r: (r.prioridad, r.id or 0))
        return rules[0] if rules else None

    def enter(self, step: str, turn: Turn, outcome: Outcome) -> None:
        """Go to a step and answer with its `*` rule, as if the customer had just arrived there."""
        outcome.state.step = step
        rule = self.wildcard(step)
        if rule:
            self._apply(rule, replace(turn, rule=rule, parameter=rule.calculo), outcome)

    def _apply(self, rule: RuleSpec, turn: Turn, outcome: Outcome) -> None:
        hops = 0
        while True:
            if self._respond(rule, turn, outcome):
                return
            if rule.siguiente_step:
                outcome.state.step = rule.siguiente_step
            if not rule.avanzar or not rule.siguiente_step or outcome.handover:
                return
            hops += 1
            following = self.wildcard(rule.siguiente_step)
            if following is None:
                return
            if hops >= self.max_hops:
                outcome.loop_stopped = True
                log.warning("flow cascade stopped after %d hops at step %r (rule %s)", hops, rule.siguiente_step,
                            rule.id)
                return
            rule = following
            turn = replace(turn, rule=rule, parameter=rule.calculo)

    def _respond(self, rule: RuleSpec, turn: Turn, outcome: Outcome) -> bool:
        """Send a rule's response; True when its handler asks to stay in the step."""
        if rule.id is not None:
            outcome.rule_ids.append(rule.id)
        if rule.rol_keyword and rule.rol_keyword not in outcome.roles:
            outcome.roles.append(rule.rol_keyword)
        text, stay = rule.respuesta, False
        if rule.handler:
            result = self._run_handler(rule, turn)
            stay = result.stay
            if result.handover:
                outcome.handover = True
                outcome.state.mode = "human"
            if result.text:
                text = f"{text}\n\n{result.text}".strip() if text and not stay else result.text
        if text or rule.media_url or rule.media_path:
            outcome.replies.append(Reply(KIND_OF_TIPO.get(rule.tipo, "text"), text or "", rule.options,
                                         rule.media_url, rule.media_path, rule.id, rule.step))
        return stay

    def _run_handler(self, rule: RuleSpec, turn: Turn) -> HandlerResult:
        handler = self.handlers.get(rule.handler)
        if handler is None:
            log.error("rule %s names unknown handler %r", rule.id, rule.handler)
            return HandlerResult()
        result = handler(turn)
        if isinstance(result, HandlerResult):
            return result
        return HandlerResult(text=result)
