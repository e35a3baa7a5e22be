"""The few expressions SQLite and MariaDB spell differently: hour of day, day, seconds between two times; and
MariaDB's bounded scan with per-statement settings for the query its defaults plan badly."""
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


def mariadb() -> bool:
    return getattr(db.engine.dialect, "is_mariadb", False)


def scalars_within(statement, rows_examined: int, **settings: str | int) -> list | None:
    """MariaDB only: the statement's first column, reading at most `rows_examined` rows (`LIMIT ... ROWS
    EXAMINED`); None when it had to stop there, so its answer may be incomplete."""
    rows = _mariadb_execute(statement, settings, f" ROWS EXAMINED {int(rows_examined)}").scalars().all()
    warnings = db.session.connection().exec_driver_sql("SHOW WARNINGS").all()
    return None if any(code == ROWS_EXAMINED_EXCEEDED for _, code, _ in warnings) else rows


ROWS_EXAMINED_EXCEEDED = 1931


def _mariadb_execute(statement, settings: dict, suffix: str = ""):
    compiled = statement.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    sql = str(compiled) + suffix
    if settings:
        sql = "SET STATEMENT " + ", ".join(f"{name}={value if isinstance(value, int) else repr(value)}"
                                           for name, value in settings.items()) + f" FOR {sql}"
    return db.session.connection().exec_driver_sql(sql, compiled.params)


def median_and_mean(subquery, column: str) -> dict:
    """Median and mean of one column of an aggregate subquery (one value per chat or per answered question,
    never per message), read as (value, how many) in one sorted pass."""
    value = subquery.c[column]
    counts = [(float(v), n) for v, n in db.session.execute(
        select(value, func.count()).where(value.is_not(None)).group_by(value).order_by(value))]
    total = sum(n for _, n in counts)
    if not total:
        return {"n": 0, "mediana": None, "media": None}

    def nth(position: int) -> float:  # the value at 0-based `position` in sorted order
        for v, n in counts:
            if position < n:
                return v
            position -= n
        raise IndexError(position)

    middle = total // 2
    median = nth(middle) if total % 2 else (nth(middle - 1) + nth(middle)) / 2
    mean = sum(v * n for v, n in counts) / total
    return {"n": total, "mediana": round(median, 1), "media": round(mean, 1)}
