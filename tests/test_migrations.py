"""The migrations build exactly the schema the models describe, on SQLite and on MariaDB."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from extensions import db


def test_migrated_database_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_the_agent_answers_migration_fills_in_the_messages_already_stored(app):
    """Upgrading a database that already has conversations marks each agent message that first answered a
    customer message, as the outbox does for new ones: bot messages and later agent messages answer nothing."""
    from datetime import datetime

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import select, text

    from models import Chat, Message
    timeline = [("in", "customer", "09:00:00"), ("out", "bot", "09:00:05"), ("out", "agent", "09:02:00"),
                ("out", "agent", "09:03:00"), ("in", "customer", "10:00:00"), ("in", "customer", "10:00:30"),
                ("out", "bot", "10:00:40"), ("out", "agent", "10:05:00"), ("out", "agent", "07:00:00")]
    with app.app_context():
        db.session.add(chat := Chat(numero="5215500000009"))
        db.session.commit()
        chat_id = chat.id
        db.session.remove()
        downgrade(revision="a4f8d2c6e913")
        try:
            with db.engine.begin() as connection:
                for direction, sender, clock in timeline:
                    created = datetime.fromisoformat(f"2026-05-04 {clock}")
                    connection.execute(text(
                        "INSERT INTO messages (chat_id, direction, sender, type, status, attempts, created_at, "
                        "updated_at) VALUES (:c, :d, :s, 'text', 'sent', 0, :t, :t)"),
                        {"c": chat_id, "d": direction, "s": sender, "t": created})
        finally:
            upgrade()
        stored = db.session.execute(select(Message.created_at, Message.answers_at).where(
            Message.chat_id == chat_id, Message.sender == "agent").order_by(Message.created_at)).all()
    assert [(at.strftime("%H:%M"), answered and answered.strftime("%H:%M:%S")) for at, answered in stored] == [
        ("07:00", None), ("09:02", "09:00:00"), ("09:03", None), ("10:05", "10:00:30")]
