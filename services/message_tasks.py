"""The message path's tasks, on the `mensajes` queue: the intake drain (webhook journal → messages) and a
chat's pipeline (the bot's answers and the outbox's sends), registered under their names."""
from services import intake, pipeline
from services.jobs import MESSAGES, task

task("intake.drain", queue=MESSAGES, aliases=("services.intake.drain",))(intake.drain)
task("chat.process", queue=MESSAGES, aliases=("services.pipeline.process_chat",))(pipeline.process_chat)
