"""The few expressions SQLite and MariaDB spell differently: hour of day, day, seconds between two times."""
from sqlalchemy import Float, Integer, cast, func, literal_column, select

from extensions import db


def _sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def day_of(column):
    """The calendar day (UTC) of a datetime column; rows come back as 'YYYY-MM-DD' or date, see `day_key`."""
    return func.date(column)


def day_key(value) -> str:
    return value if isinstance(value, str) else value.isoformat()


def hour_of(column):
    return cast(func.strftime("%H", column), Integer) if _sqlite() else func.hour(column)


def seconds_between(start, end):
    if _sqlite():
        return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)
    return func.timestampdiff(literal_column("SECOND"), start, end)


def median_and_mean(subquery, column: str) -> dict:
    """Median and mean of one column of an aggregate subquery (one value per chat or per answered question,
    never per message), read in one sorted pass."""
    value = subquery.c[column]
    values = [float(v) for v in db.session.scalars(select(value).where(value.is_not(None)).order_by(value))]
    if not values:
        return {"n": 0, "mediana": None, "media": None}
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return {"n": len(values), "mediana": round(median, 1), "media": round(sum(values) / len(values), 1)}
