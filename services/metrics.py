"""Prometheus metrics: defined here once, observed by the services through the `observe_*` functions.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn with several workers), prometheus_client keeps the values in
files in that folder and `render` aggregates every process; without it the values are this process's.
"""
import os

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, multiprocess)

REGISTRY = CollectorRegistry(auto_describe=True)
FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SLOW = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)

WEBHOOKS = Counter("whatsapp_webhooks_received_total", "Webhook POSTs received, by kind and result",
                   ("source", "kind", "result"), registry=REGISTRY)
MESSAGES = Counter("whatsapp_messages_processed_total", "Inbound messages handled by the flow, by result",
                   ("result",), registry=REGISTRY)
FLOW_SECONDS = Histogram("whatsapp_flow_seconds", "Time the flow engine took to handle one inbound message",
                         buckets=FAST, registry=REGISTRY)
SENDS = Counter("whatsapp_sends_total", "Outbound send attempts, by result and error code",
                ("result", "error_code"), registry=REGISTRY)
JOBS = Counter("whatsapp_jobs_total", "Background jobs run, by task and result", ("task", "result"),
               registry=REGISTRY)
JOB_SECONDS = Histogram("whatsapp_job_seconds", "Background job run time", ("task",), buckets=SLOW,
                        registry=REGISTRY)
QUEUE_DEPTH = Gauge("whatsapp_job_queue_depth", "Jobs queued, running or waiting to retry (at scrape time)",
                    ("backend",), registry=REGISTRY, multiprocess_mode="livesum")
QUEUE_FAILED = Gauge("whatsapp_job_failures", "Jobs that failed for good (at scrape time)", ("backend",),
                     registry=REGISTRY, multiprocess_mode="max")
TRANSCRIPTION_SECONDS = Histogram("whatsapp_transcription_seconds", "Voice-note transcription time, by result",
                                  ("result",), buckets=SLOW, registry=REGISTRY)
JOURNAL_BATCH_ROWS = Histogram("whatsapp_journal_batch_rows", "Webhook events stored per INSERT and COMMIT (group commit)",
                               buckets=(1, 2, 4, 8, 16, 32, 64), registry=REGISTRY)
SENTIMENT_SECONDS = Histogram("whatsapp_sentiment_seconds", "Sentiment classification time, by provider and result",
                              ("provider", "result"), buckets=FAST, registry=REGISTRY)


def observe_journal_batch(rows: int) -> None:
    JOURNAL_BATCH_ROWS.observe(rows)


def observe_webhook(source: str, kind: str, result: str) -> None:
    """One webhook POST: kind is messages/statuses/mixed/other/unknown; result ok, duplicate, invalid_signature..."""
    WEBHOOKS.labels(source, kind, result).inc()


def observe_message(seconds: float, result: str) -> None:
    """One inbound message handled by the flow (result `ok` or `failed`)."""
    MESSAGES.labels(result).inc()
    FLOW_SECONDS.observe(seconds)


def observe_send(result: str, error_code=None) -> None:
    """One outbound send attempt: result `sent`, `deferred` or `failed`; Meta's error code when there is one."""
    SENDS.labels(result, "" if error_code is None else str(error_code)).inc()


def observe_job(task: str, seconds: float, result: str) -> None:
    JOBS.labels(task, result).inc()
    JOB_SECONDS.labels(task).observe(seconds)


def observe_transcription(seconds: float, result: str) -> None:
    """One voice note: result `ok`, `failed`, `skipped`..."""
    TRANSCRIPTION_SECONDS.labels(result).observe(seconds)


def observe_sentiment(seconds: float, provider: str, result: str = "ok") -> None:
    """One sentiment classification by `provider` (gemini, local...), result `ok` or `failed`."""
    SENTIMENT_SECONDS.labels(provider, result).observe(seconds)


def observe_queue(backend: str, pending: int, failed: int) -> None:
    QUEUE_DEPTH.labels(backend).set(pending)
    QUEUE_FAILED.labels(backend).set(failed)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def webhook_kind(messages: int, statuses: int) -> str:
    if messages and statuses:
        return "mixed"
    return "messages" if messages else "statuses" if statuses else "other"
