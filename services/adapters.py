"""Builds the adapters to outside systems once per app and keeps them in `app.extensions`."""
from sqlalchemy import event
from sqlalchemy.engine import Engine

from services.conversation import respond
from services.events import LocalBroker, RedisBroker, install_session_hooks
from services.forwarding import TIMEOUT as FORWARD_TIMEOUT
from services.graph import GraphClient
from services.job_backends import RqJobs, ThreadJobs
from services.jobs import MESSAGES, OUTSIDE
from services.journal import Journal
from services.outside import CallLimits
from services.rules import version as rules_version
from services.sentiment import make_classifier
from services.transports import make_transport


def _sqlite_pragmas(dbapi_connection, _record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None  # let SQLAlchemy's begin hook emit BEGIN IMMEDIATE
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def _sqlite_begin(connection):
    if connection.dialect.name == "sqlite":
        # Writers queue on the database lock instead of failing when two of them upgrade at once.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def engine_options(uri: str) -> dict:
    if uri.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_recycle": 3600, "isolation_level": "READ COMMITTED",
            "pool_size": 10, "max_overflow": 20,
            # Sessions end their transaction (commit, or rollback on close) before the connection goes
            # back; the pool's own ROLLBACK on return would be one more round trip per request and job.
            "pool_reset_on_return": None}


def install_database_hooks() -> None:
    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)
        event.listen(Engine, "begin", _sqlite_begin)


def init_app(app) -> None:
    config = app.config
    app.extensions["graph"] = GraphClient(config["GRAPH_API_URL"], config["GRAPH_API_VERSION"],
                                          config["META_TOKEN"], config["PHONE_NUMBER_ID"])
    if config["JOBS_BACKEND"] == "rq":
        app.extensions["jobs"] = RqJobs(config["REDIS_URL"])
    else:
        threads = {MESSAGES: config["JOB_THREADS"], OUTSIDE: config["OUTSIDE_JOB_THREADS"]}
        app.extensions["jobs"] = ThreadJobs(app, threads)
    # A caller waits for a turn about as long as one call may take, then its job tries again later.
    app.extensions["outside_calls"] = calls = CallLimits(config["OUTSIDE_JOB_THREADS"], {
        "graph": config["MEDIA_READ_TIMEOUT_SEC"], "twilio": config["MEDIA_READ_TIMEOUT_SEC"],
        "forwarding": FORWARD_TIMEOUT[1], "gemini": config["GEMINI_TIMEOUT_SEC"]})
    app.extensions["journal"] = Journal(app)
    app.extensions["transport"] = make_transport(config, app.extensions["graph"])
    app.extensions["inbound_handler"] = respond
    app.extensions["sentiment"] = make_classifier(config, calls.limits["gemini"])
    app.extensions["events"] = RedisBroker(config["REDIS_URL"]) if config["REDIS_URL"] else LocalBroker()
    install_session_hooks()
    rules_version.install()
