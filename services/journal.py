"""Group commit of the intake journal: the webhook requests of a process share one INSERT.

A webhook is answered once its raw update is durably stored (services.intake). Storing each one with its own
transaction costs a request more than everything else it does, and the database one fsync per webhook.
So each process has one writer thread: requests hand it their row and wait; it takes every row waiting, stores
them with one multi-row INSERT (ids back in order through RETURNING, where the database has it), wakes the
drainer once for the batch, and hands each request its id or the error. While it writes, the next requests
queue, so batches grow with the load and a lone webhook waits for nobody.

The writer starts with the first row and stops after `IDLE_SECONDS` without one (and again, in a forked
child, with the first row there). While it runs it keeps one pooled connection in autocommit mode: a batch
is then one round trip, the INSERT, which the database commits by itself (all its rows or none), with no
checkout, ping or COMMIT of its own. A connection lost meanwhile is replaced and the batch tried again.
"""
import contextlib
import functools
import logging
import os
import random
import threading
import time
from concurrent.futures import Future

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from extensions import db
from models import WebhookEvent
from services import intake, metrics
from services.transactions import is_retryable

log = logging.getLogger(__name__)
EVENTS = WebhookEvent.__table__
COLUMNS = ("source", "kind", "payload", "received_at")
MAX_ROWS = 64  # the bodies of one batch are at most 64 x 3 MB, within MariaDB's default max_allowed_packet
IDLE_SECONDS = 5.0
WAIT_SECONDS = 30.0  # a request gives up on the writer after this (503: the sender retries, the wamid dedups)
ATTEMPTS = 4


class Journal:
    def __init__(self, app):
        self.app = app
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._ready = threading.Condition()
        self._waiting: list[tuple[dict, Future]] = []
        self._writer: threading.Thread | None = None
        self._held: Connection | None = None  # the writer thread's own
        self._statements: BatchInsert | None = None

    def append(self, values: dict) -> int:
        """Store one `webhook_events` row durably; its id. Raises OperationalError when the database cannot
        take it (after retrying deadlocks, lock timeouts and lost connections)."""
        if self._pid != os.getpid():  # forked since the last row: the parent's writer is not running here
            self._reset()
        future = Future()
        with self._ready:
            self._waiting.append((values, future))
            if self._writer is None:
                self._writer = threading.Thread(target=self._run, name="journal-writer", daemon=True)
                self._writer.start()
            self._ready.notify()
        try:
            return future.result(WAIT_SECONDS)
        except TimeoutError:
            raise OperationalError("INSERT INTO webhook_events", None,
                                   Exception(f"el diario no respondió en {WAIT_SECONDS:.0f} s")) from None

    def _run(self) -> None:
        with self.app.app_context():
            try:
                while (batch := self._next_batch()):
                    self._write(batch)
            finally:
                self._disconnect()

    def _connection(self) -> Connection:
        if self._held is None:
            self._held = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self._statements is None:
                self._statements = BatchInsert(self._held.dialect)
        return self._held

    def _disconnect(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            try:
                held.close()
            except Exception:  # already broken: the pool discards it
                log.debug("journal connection closed with an error", exc_info=True)

    def _next_batch(self) -> list[tuple[dict, Future]]:
        with self._ready:
            if not self._ready.wait_for(lambda: self._waiting, IDLE_SECONDS):
                self._writer = None
                return []
            batch, self._waiting = self._waiting[:MAX_ROWS], self._waiting[MAX_ROWS:]
            return batch

    def _write(self, batch: list[tuple[dict, Future]]) -> None:
        try:
            ids = self._insert([values for values, _ in batch])
        except Exception as error:
            if len(batch) > 1 and not isinstance(error, OperationalError):
                log.warning("journal batch of %d refused (%s); storing its rows one by one", len(batch), error)
                for row in batch:
                    self._write([row])
                return
            for _, future in batch:
                future.set_exception(error)
            return
        metrics.observe_journal_batch(len(batch))
        try:
            intake.wake()
        except Exception:  # stored: the next wake-up, the worker's start or requeue-pending drains them
            log.exception("webhook events %s stored, but the drainer could not be woken", ids)
        for (_, future), event_id in zip(batch, ids):
            future.set_result(event_id)

    def _insert(self, rows: list[dict]) -> list[int]:
        """All `rows` in one statement (one per row on MySQL, which cannot return a batch's ids), tried again
        on a deadlock, lock timeout or lost connection (an insert whose answer was lost may store a row twice:
        harmless, the drain stores each wamid once)."""
        for attempt in range(1, ATTEMPTS + 1):
            connection = self._connection()
            try:
                return self._statements.insert(connection, rows)
            except DBAPIError as error:
                if error.connection_invalidated:
                    self._disconnect()
                retryable = error.connection_invalidated or (isinstance(error, OperationalError) and is_retryable(error))
                if attempt == ATTEMPTS or not retryable:
                    raise
                log.info("journal write retried after %s (attempt %d)", type(error.orig).__name__, attempt)
                time.sleep(random.uniform(0.005, 0.05) * attempt)


class BatchInsert:
    """The journal's INSERT on the driver's own cursor, its SQL built once per batch size.

    It is the one statement of the hot path: SQLAlchemy's execution around it (compiling, parameter and
    result handling, events) costs a webhook more than the round trip does. Values still go through the
    columns' bind processors (SQLite's datetimes as text, as the ORM stores them), and a driver error is
    raised as SQLAlchemy's, the connection invalidated when it is lost, as `Connection.execute` would."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.returning = dialect.insert_returning  # SQLite >= 3.35 and MariaDB >= 10.5; not MySQL
        self.processors = [(name, EVENTS.c[name].type.dialect_impl(dialect).bind_processor(dialect))
                           for name in COLUMNS]
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        self.row_sql = "(" + ", ".join([marker] * len(COLUMNS)) + ")"
        self.sql = functools.lru_cache(maxsize=MAX_ROWS)(self._sql)

    def _sql(self, count: int) -> str:
        return (f"INSERT INTO {EVENTS.name} ({', '.join(COLUMNS)}) VALUES " + ", ".join([self.row_sql] * count)
                + (" RETURNING id" if self.returning else ""))

    def _params(self, row: dict) -> list:
        return [row[name] if process is None else process(row[name]) for name, process in self.processors]

    def insert(self, connection: Connection, rows: list[dict]) -> list[int]:
        """The ids of `rows`, in order (a multi-row INSERT numbers its rows in VALUES order). `connection` is in
        autocommit mode: each statement commits itself."""
        dbapi_connection, cursor = connection.connection.dbapi_connection, None
        sql = self.sql(len(rows) if self.returning else 1)
        try:
            cursor = dbapi_connection.cursor()
            if self.returning:
                cursor.execute(sql, [value for row in rows for value in self._params(row)])
                return sorted(event_id for (event_id,) in cursor.fetchall())
            ids = []
            for row in rows:
                cursor.execute(sql, self._params(row))
                ids.append(cursor.lastrowid)
            return ids
        except self.dialect.loaded_dbapi.Error as error:
            lost = self.dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:
                connection.invalidate()
            raise DBAPIError.instance(sql, None, error, self.dialect.loaded_dbapi.Error, hide_parameters=True,
                                      connection_invalidated=lost, dialect=self.dialect) from error
        finally:
            if cursor is not None:
                with contextlib.suppress(self.dialect.loaded_dbapi.Error):
                    cursor.close()
