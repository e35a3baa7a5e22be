"""Running a unit of database work again when the database asks for it (deadlock, lock timeout)."""
import logging
import random
import time

from sqlalchemy.exc import OperationalError

from extensions import db

log = logging.getLogger(__name__)
RETRYABLE_MYSQL_CODES = {1205, 1213}


def is_retryable(error: OperationalError) -> bool:
    code = getattr(error.orig, "args", [None])[0]
    return code in RETRYABLE_MYSQL_CODES or "database is locked" in str(error.orig)


def in_transaction(work, attempts: int = 6):
    """Call `work()` and commit; on a deadlock or lock timeout roll back and call it again."""
    for attempt in range(1, attempts + 1):
        try:
            result = work()
            db.session.commit()
            return result
        except OperationalError as error:
            db.session.rollback()
            if attempt == attempts or not is_retryable(error):
                raise
            log.info("transaction retried after %s (attempt %d)", type(error.orig).__name__, attempt)
            time.sleep(random.uniform(0.005, 0.05) * attempt)
        except Exception:
            db.session.rollback()
            raise
