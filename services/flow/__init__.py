"""The bot: a flow engine over rules, with global commands and custom handlers."""
from services.flow.commands import COMMANDS, register_command
from services.flow.engine import ChatState, FlowEngine, Incoming, Outcome, Reply, RuleSpec
from services.flow.handlers import HANDLERS, register_handler

__all__ = ["COMMANDS", "HANDLERS", "ChatState", "FlowEngine", "Incoming", "Outcome", "Reply", "RuleSpec",
           "register_command", "register_handler"]
