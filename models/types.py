"""Column types shared by the models."""
from datetime import datetime, timezone

from sqlalchemy import BigInteger, Integer, Text
from sqlalchemy.dialects import mysql

BigId = BigInteger().with_variant(Integer, "sqlite")
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# Text a webhook brings (up to its 3 MB): MySQL's TEXT stops at 64 KB, MEDIUMTEXT at 16 MB.
PayloadText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def utcnow() -> datetime:
    """Naive UTC now: both databases store naive datetimes, all of them UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
