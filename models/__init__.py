"""The data model, split by domain."""
from models.chat import Chat, ChatLease, SimulatorNumber, chat_roles
from models.message import Counter, Lease, Message, MessageStatusEvent, WebhookEvent
from models.rule import QuickReply, QuickReplyMedia, Rule, RuleMedia
from models.user import ApiKey, Role, User, user_roles

__all__ = ["ApiKey", "Chat", "ChatLease", "Counter", "Lease", "Message", "MessageStatusEvent", "QuickReply", "QuickReplyMedia",
           "Role", "Rule", "RuleMedia", "SimulatorNumber", "User", "WebhookEvent", "chat_roles", "user_roles"]
