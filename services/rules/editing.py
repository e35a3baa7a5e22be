"""Reading and changing the rules one at a time. Every write keeps the rule set whole: each
non-empty `siguiente_step` names a step that some rule has.
"""
import logging
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from extensions import db
from models import Rule, RuleMedia
from services.rules import media as rule_media
from services.rules.media import MediaError, Upload
from services.rules.validation import MEDIA_TYPES, RuleError, validate_rule
from services.transactions import in_transaction

log = logging.getLogger(__name__)


def list_rules() -> list[Rule]:
    """Every rule, ordered by step, then prioridad, then id."""
    query = select(Rule).options(selectinload(Rule.media)).order_by(Rule.step, Rule.prioridad, Rule.id)
    return list(db.session.scalars(query))


def rules_by_step() -> list[tuple[str, list[Rule]]]:
    """The rules grouped by step (steps in name order), each group in prioridad order."""
    groups: dict[str, list[Rule]] = {}
    for rule in list_rules():
        groups.setdefault(rule.step, []).append(rule)
    return list(groups.items())


def get_rule(rule_id: int) -> Rule | None:
    return db.session.get(Rule, rule_id)


def step_names(excluding_rule_id: int | None = None) -> set[str]:
    """The steps that have at least one rule (not counting one rule, when given)."""
    query = select(Rule.step).distinct()
    if excluding_rule_id is not None:
        query = query.where(Rule.id != excluding_rule_id)
    return set(db.session.scalars(query))


def _rules_leading_to(step: str, excluding_rule_id: int) -> list[Rule]:
    query = select(Rule).where(Rule.siguiente_step == step, Rule.id != excluding_rule_id).order_by(Rule.id)
    return list(db.session.scalars(query))


def _orphan_error(step: str, rule_id: int) -> str | None:
    """Why the rule set would break if `rule_id` left `step`, or None."""
    if step in step_names(excluding_rule_id=rule_id):
        return None
    leading = _rules_leading_to(step, rule_id)
    if not leading:
        return None
    names = ", ".join(f"{r.id} (paso {r.step})" for r in leading)
    return f"es la última regla del paso {step!r} y las reglas {names} llevan a él; cámbielas primero"


def _store_or_refuse(values: dict, upload: Upload | None, errors: dict) -> RuleMedia | None:
    if upload is not None and "archivo" not in errors:
        reason = rule_media.check_upload_name(values["tipo"], upload.filename)
        if reason:
            errors["archivo"] = reason
    if errors:
        raise RuleError(errors)
    if upload is None:
        return None
    try:
        return rule_media.store_upload(values["tipo"], upload)
    except MediaError as error:
        raise RuleError({"archivo": str(error)}) from None


def _commit(work, stored: RuleMedia | None):
    try:
        return in_transaction(work)
    except BaseException:
        if stored is not None:
            rule_media.discard_stored([stored])
        raise


def create_rule(raw: Mapping, upload: Upload | None = None, known_handlers: Iterable[str] | None = None) -> Rule:
    """Add a rule (with an optional uploaded file); RuleError says what to fix."""
    values, errors = validate_rule(raw, step_names(), known_handlers, has_media=upload is not None)
    stored = _store_or_refuse(values, upload, errors)
    rule = Rule(**values)
    if stored is not None:
        rule.media.append(stored)

    def work():
        db.session.add(rule)
        db.session.flush()
        return rule
    _commit(work, stored)
    log.info("rule %s created in step %r", rule.id, rule.step)
    return rule


def update_rule(rule_id: int, raw: Mapping, upload: Upload | None = None, remove_media: bool = False,
                known_handlers: Iterable[str] | None = None) -> Rule:
    """Change a rule; a new upload replaces its file, `remove_media` drops it. RuleError says what to fix."""
    rule = get_rule(rule_id)
    if rule is None:
        raise LookupError(f"la regla {rule_id} no existe")
    keeps_media = bool(rule.media) and not remove_media
    values, errors = validate_rule(raw, step_names(excluding_rule_id=rule_id), known_handlers,
                                   has_media=upload is not None or keeps_media)
    if values["step"] != rule.step and "step" not in errors:
        if reason := _orphan_error(rule.step, rule_id):
            errors["step"] = reason
    if keeps_media and upload is None and values["tipo"] not in MEDIA_TYPES and "tipo" not in errors:
        errors["tipo"] = "la regla tiene un archivo; márquelo para quitarlo o use un tipo de archivo"
    stored = _store_or_refuse(values, upload, errors)
    old_paths = [media.path for media in rule.media] if stored is not None or remove_media else []

    def work():
        for name, value in values.items():
            setattr(rule, name, value)
        if stored is not None or remove_media:
            rule.media.clear()
        if stored is not None:
            rule.media.append(stored)
        return rule
    _commit(work, stored)
    rule_media.remove_unreferenced(old_paths)
    log.info("rule %s updated", rule.id)
    return rule


def delete_rule(rule_id: int) -> None:
    """Remove a rule and its file, unless other rules still lead to its step and it is the step's last rule."""
    rule = get_rule(rule_id)
    if rule is None:
        raise LookupError(f"la regla {rule_id} no existe")
    if reason := _orphan_error(rule.step, rule_id):
        raise RuleError({"step": reason})
    paths = [media.path for media in rule.media]
    in_transaction(lambda: db.session.delete(rule))
    rule_media.remove_unreferenced(paths)
    log.info("rule %s deleted", rule_id)


def _rules_of_step(step: str) -> list[Rule]:
    return list(db.session.scalars(select(Rule).where(Rule.step == step).order_by(Rule.prioridad, Rule.id)))


def reorder_rules(step: str, ordered_ids: Iterable[int]) -> None:
    """Give the rules of a step prioridad 1, 2, 3… in the order of `ordered_ids` (every rule of the step once)."""
    ids = list(ordered_ids)
    rules = {rule.id: rule for rule in _rules_of_step(step)}
    if sorted(ids) != sorted(rules):
        raise RuleError({"prioridad": f"el orden debe nombrar cada regla del paso {step!r} una sola vez"})

    def work():
        for position, rule_id in enumerate(ids, start=1):
            rules[rule_id].prioridad = position
    in_transaction(work)
    log.info("rules of step %r reordered: %s", step, ids)


def move_rule(rule_id: int, offset: int) -> str:
    """Move a rule up (offset -1) or down (+1) among its step's rules; returns the step."""
    rule = get_rule(rule_id)
    if rule is None:
        raise LookupError(f"la regla {rule_id} no existe")
    ids = [r.id for r in _rules_of_step(rule.step)]
    position = ids.index(rule_id)
    ids.insert(max(0, min(len(ids) - 1, position + offset)), ids.pop(position))
    reorder_rules(rule.step, ids)
    return rule.step

