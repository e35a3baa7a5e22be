"""The rules' version: every change to the bot's rules bumps it in the same transaction, so each process can
keep the rules in memory and read them again only when they changed (services.conversation.rule_book).

The bump is an ORM hook: any flush that adds, changes or deletes a `Rule` or `RuleMedia` (the admin pages,
the Excel import, the demo seed) bumps `counters.rules`, and a rollback takes the bump back with the change.
"""
from sqlalchemy import event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from extensions import db
from models import Counter, Rule, RuleMedia

NAME = "rules"
COUNTERS = Counter.__table__


def current() -> int:
    """The rules' version now (0 before any change was ever recorded)."""
    return db.session.scalar(select(COUNTERS.c.value).where(COUNTERS.c.name == NAME)) or 0


def bump(connection) -> None:
    """Add one to the version, on `connection` (inside the caller's transaction)."""
    if connection.execute(update(COUNTERS).where(COUNTERS.c.name == NAME)
                          .values(value=COUNTERS.c.value + 1)).rowcount:
        return
    try:
        with connection.begin_nested():
            connection.execute(insert(COUNTERS).values(name=NAME, value=1))
    except IntegrityError:  # created meanwhile by another writer
        connection.execute(update(COUNTERS).where(COUNTERS.c.name == NAME).values(value=COUNTERS.c.value + 1))


def _after_flush(session: Session, _context) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(item, (Rule, RuleMedia)) for item in changed):
        bump(session.connection())


def install() -> None:
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
