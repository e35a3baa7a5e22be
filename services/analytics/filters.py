"""The dashboard filters (desde, hasta, rol, numero), parsed and checked against the viewer's roles."""
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import false, select

from extensions import db
from models import Chat, Message, Role, User, chat_roles
from models.types import utcnow
from services.access import parse_id

DEFAULT_DAYS = 30
MAX_DAYS = 731
NUMBER = re.compile(r"^\+?\d{5,20}$")


class FilterError(ValueError):
    """A filter value the dashboard cannot use; the message is for the user, in Spanish."""


@dataclass(frozen=True)
class Filters:
    desde: date
    hasta: date
    role_id: int | None
    numero: str | None
    viewer: User

    @property
    def start(self) -> datetime:
        return datetime.combine(self.desde, datetime.min.time())

    @property
    def end(self) -> datetime:
        """Exclusive upper bound: midnight after `hasta`."""
        return datetime.combine(self.hasta + timedelta(days=1), datetime.min.time())

    @property
    def some_chats(self) -> bool:
        """True when the filters or the viewer's roles keep only some chats (the chat-first indexes serve best)."""
        return bool(self.numero) or self.role_id is not None or not self.viewer.is_admin

    def days(self) -> list[date]:
        return [self.desde + timedelta(days=n) for n in range((self.hasta - self.desde).days + 1)]

    def as_dict(self) -> dict:
        return {"desde": self.desde.isoformat(), "hasta": self.hasta.isoformat(), "rol": self.role_id,
                "numero": self.numero}

    def conditions(self, table=None) -> list:
        """WHERE clauses restricting `messages` (or an alias of it) to the range, the filters and the viewer."""
        m = table if table is not None else Message.__table__
        where = [m.c.created_at >= self.start, m.c.created_at < self.end]
        if self.numero:
            where.append(m.c.chat_id == select(Chat.id).where(Chat.numero == self.numero).scalar_subquery())
        if self.role_id is not None:
            where.append(m.c.chat_id.in_(select(chat_roles.c.chat_id).where(chat_roles.c.role_id == self.role_id)))
        if not self.viewer.is_admin:
            allowed = [role.id for role in self.viewer.roles]
            if not allowed:
                where.append(false())
            elif self.role_id is None:
                where.append(m.c.chat_id.in_(select(chat_roles.c.chat_id).where(chat_roles.c.role_id.in_(allowed))))
        return where


def _parse_date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"«{name}» debe ser una fecha AAAA-MM-DD; se recibió «{value[:40]}».") from None


def parse_filters(args, viewer: User, today: date | None = None) -> Filters:
    """Filters from query-string `args`; by default the last 30 days. Raises FilterError on a bad value."""
    today = today or utcnow().date()
    hasta = _parse_date(args["hasta"], "hasta") if args.get("hasta") else today
    desde = _parse_date(args["desde"], "desde") if args.get("desde") else hasta - timedelta(days=DEFAULT_DAYS - 1)
    if desde > hasta:
        raise FilterError("«desde» no puede ser posterior a «hasta».")
    if (hasta - desde).days >= MAX_DAYS:
        raise FilterError(f"El rango de fechas no puede superar {MAX_DAYS} días.")
    role_id = None
    if args.get("rol"):
        raw = args["rol"]
        role_id = parse_id(raw)
        if role_id is None:
            raise FilterError(f"«rol» debe ser el número de un rol; se recibió «{raw[:40]}».")
        if db.session.get(Role, role_id) is None:
            raise FilterError(f"No existe el rol {role_id}.")
        if not viewer.is_admin and role_id not in {role.id for role in viewer.roles}:
            raise FilterError(f"No tiene el rol {role_id}; solo puede filtrar por sus propios roles.")
    numero = (args.get("numero") or "").strip() or None
    if numero is not None:
        if not NUMBER.match(numero):
            raise FilterError("«numero» debe tener solo dígitos (de 5 a 20), sin espacios.")
        numero = numero.lstrip("+")
    return Filters(desde, hasta, role_id, numero, viewer)
