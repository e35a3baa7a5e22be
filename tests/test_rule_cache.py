"""The bot keeps its rules in memory and reads them again only when they changed: every kind of edit is seen
by the next message, and no edit means no reread."""
import io

from sqlalchemy import select

from extensions import db
from models import Message
from services.conversation import rule_book
from services.rules import create_rule, delete_rule, import_rules, update_rule
from tests.rule_factories import rule_row, sheet_bytes
from tests.test_conversations import Customer


def last_reply(app) -> str:
    with app.app_context():
        return db.session.scalar(select(Message.text).where(Message.direction == "out").order_by(Message.id.desc()))


def test_each_kind_of_rule_edit_is_seen_by_the_next_message(app):
    customer = Customer(app)
    with app.app_context():
        rule_id = create_rule(rule_row(respuesta="primera")).id
    customer.says("hola")
    assert last_reply(app) == "primera"

    with app.app_context():
        update_rule(rule_id, rule_row(respuesta="segunda"))
    customer.says("hola")
    assert last_reply(app) == "segunda"

    with app.app_context():
        report = import_rules(io.BytesIO(sheet_bytes([rule_row(respuesta="importada")])))
        assert report.ok, report.errors
    customer.says("hola")
    assert last_reply(app) == "importada"

    with app.app_context():
        delete_rule(db.session.scalar(select(Message.rule_id).where(Message.direction == "out")
                                      .order_by(Message.id.desc())))
        create_rule(rule_row(input_text="*", respuesta="comodín"))
    customer.says("hola")
    assert last_reply(app) == "comodín"


def test_rules_are_not_read_again_while_they_do_not_change(app):
    with app.app_context():
        create_rule(rule_row())
        first = rule_book()
        assert rule_book() is first and first.rules_for_step("inicio")[0].respuesta == "¡Hola!"
        create_rule(rule_row(step="otro"))
        assert rule_book() is not first and rule_book().rules_for_step("otro")
