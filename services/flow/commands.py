"""Global commands, checked before any rule. Code can add more with `register_command`."""
from services.flow.engine import Command, FlowEngine, Outcome, Reply, Turn

HANDOVER_TEXT = "Te comunico con un asesor. Te responderá en breve por este mismo chat."


def restart(engine: FlowEngine, turn: Turn, outcome: Outcome) -> None:
    outcome.state.context = {}
    engine.enter(engine.initial_step, turn, outcome)


def show_menu(engine: FlowEngine, turn: Turn, outcome: Outcome) -> None:
    engine.enter(engine.initial_step, turn, outcome)


def show_help(engine: FlowEngine, turn: Turn, outcome: Outcome) -> None:
    seen, lines = set(), []
    for command in engine.commands.values():
        if command.name not in seen and command.help:
            seen.add(command.name)
            lines.append(f"*{command.name}*: {command.help}")
    outcome.replies.append(Reply("text", "Puedes escribir en cualquier momento:\n" + "\n".join(lines),
                                 step=outcome.state.step))


def hand_over(engine: FlowEngine, turn: Turn, outcome: Outcome) -> None:
    outcome.handover = True
    outcome.state.mode = "human"
    outcome.replies.append(Reply("text", HANDOVER_TEXT, step=outcome.state.step))


COMMANDS: dict[str, Command] = {}


def register_command(command: Command) -> Command:
    COMMANDS[command.name] = command
    return command


for _command in (
    Command("reiniciar", restart, ("reset", "empezar", "inicio"), "vuelve a empezar la conversación"),
    Command("menu", show_menu, ("menú principal", "menu principal"), "muestra el menú principal"),
    Command("ayuda", show_help, ("help",), "muestra esta ayuda"),
    Command("asesor", hand_over, ("humano", "agente", "hablar con un asesor"), "te comunica con una persona"),
):
    register_command(_command)
