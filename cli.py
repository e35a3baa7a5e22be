"""`flask --app app ...` commands."""
import click
from flask import current_app

from services.auth import UserError, create_user, ensure_admin
from services.demo_flow import seed_demo_flow
from services.jobs import MESSAGES, OUTSIDE, QUEUES


def register_commands(app) -> None:
    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--role", "roles", multiple=True, help="Rol del usuario (se crea si no existe); repetible.")
    @click.option("--admin", is_flag=True, help="Administrador: ve todos los chats y la configuración.")
    def create_user_command(username, password, roles, admin):
        """Crea un usuario."""
        try:
            user = create_user(username, password, roles, admin)
        except UserError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Usuario {user.username} creado" + (" (administrador)" if admin else "")
                   + (f" con roles: {', '.join(r.name for r in user.roles)}" if user.roles else ""))

    @app.cli.command("seed")
    def seed_command():
        """Crea el administrador `admin` y el flujo de demostración si no existen."""
        generated = ensure_admin(current_app.config["ADMIN_PASSWORD"])
        if generated:
            click.echo(f"Administrador creado: usuario admin, contraseña {generated} (se muestra solo esta vez)")
        else:
            click.echo("El usuario admin ya existe.")
        created = seed_demo_flow()
        if created:
            click.echo(f"Flujo de demostración creado ({created} reglas); pruébelo en /simulador.")

    @app.cli.command("worker")
    @click.option("--queues", default=",".join(QUEUES), show_default=True,
                  help="Colas que atiende, separadas por comas, en orden de prioridad: mensajes (el bot y sus "
                       "envíos) y externos (descargas, transcripción, sentimiento, reenvíos, confirmaciones de lectura).")
    def worker_command(queues):
        """Atiende colas de trabajos en Redis (JOBS_BACKEND=rq)."""
        from rq import SimpleWorker

        names = [name.strip() for name in queues.split(",") if name.strip()]
        unknown = [name for name in names if name not in QUEUES]
        if unknown or not names:
            raise click.BadParameter(f"{', '.join(unknown) or 'ninguna'}: las colas son {' y '.join(QUEUES)}",
                                     param_hint="--queues")
        jobs = current_app.extensions["jobs"]
        if current_app.config["JOBS_BACKEND"] != "rq":
            raise click.ClickException("el worker necesita JOBS_BACKEND=rq y REDIS_URL")
        served = jobs.worker_queues(list(dict.fromkeys(names)))
        click.echo(f"{jobs.recover_abandoned(served)} trabajos abandonados por un worker caído recuperados")
        if MESSAGES in names:
            from services.intake import wake; wake()  # updates journaled while no worker ran
        if OUTSIDE in names:
            from services.transcription import preload_model; preload_model()  # once, for every job after
        click.echo(f"Atendiendo las colas: {', '.join(queue.name for queue in served)}")
        # Jobs run in this process, one after the other: the bot's take milliseconds each, which a fork and a new
        # database connection per job (RQ's Worker) would multiply. A job that kills the process is
        # recovered by the next worker to start (recover_abandoned); the time limit holds (SIGALRM, main thread).
        SimpleWorker(served, connection=jobs.connection).work(with_scheduler=True)

    @app.cli.command("requeue-pending")
    def requeue_pending_command():
        """Vuelve a encolar el diario de webhooks y los chats con mensajes sin procesar (tras una caída)."""
        from services.intake import drain
        from services.jobs import enqueue
        from services.pipeline import pending_chat_ids
        click.echo(f"{drain().events} actualizaciones del diario guardadas")
        from services.media import requeue_stalled; click.echo(requeue_stalled())  # downloads, transcriptions
        chat_ids = pending_chat_ids()
        for chat_id in chat_ids:
            enqueue("chat.process", chat_id)
        click.echo(f"{len(chat_ids)} chats encolados")

    @app.cli.command("replay-events")
    @click.argument("event_ids", nargs=-1, type=int)
    def replay_events_command(event_ids):
        """Vuelve a procesar los webhooks apartados (todos, o los EVENT_IDS dados) tras corregir la causa."""
        from services.intake import replay
        count = replay(list(event_ids) if event_ids else None)
        click.echo(f"{count} evento(s) apartado(s) vuelven al diario; lo ya guardado no se repite")

    from cli_rules import register as register_rule_commands; register_rule_commands(app)
    from cli_sentiment import register as register_sentiment_commands; register_sentiment_commands(app)
    from cli_stt import register as register_stt_commands; register_stt_commands(app)
