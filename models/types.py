"""Column types shared by the models."""
from datetime import datetime, timezone

from sqlalchemy import BigInteger, Integer, Text
from sqlalchemy.dialects import mysql

BigId = BigInteger().with_variant(Integer, "sqlite")
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def utcnow() -> datetime:
    """Naive UTC now: both databases store naive datetimes, all of them UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
