"""/metrics for Prometheus, and the structured log lines of webhooks, jobs and sends (no body, no secret)."""
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services import metrics
from services.signatures import meta_signature
from tests.conftest import APP_SECRET, post_webhook, text_payload, wait_for_jobs
from tests.fakes.graph import corpus_api

PATH = "/v25.0/1122334455667/messages"
SECRET_WORDS = "contraseña-del-cliente-XYZZY"


@pytest.fixture
def cloud(make_app):
    return make_app(WHATSAPP_TRANSPORT="cloud", SEND_RETRY_DELAYS=(0.05, 0.1))


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_open_and_list_every_family(client):
    text = client.get("/metrics").get_data(as_text=True)
    for family in ("whatsapp_webhooks_received_total", "whatsapp_messages_processed_total", "whatsapp_flow_seconds",
                   "whatsapp_sends_total", "whatsapp_job_queue_depth", "whatsapp_job_failures",
                   "whatsapp_jobs_total", "whatsapp_transcription_seconds", "whatsapp_sentiment_seconds"):
        assert f"# TYPE {family.removesuffix('_total')}" in text


def test_webhook_flow_send_and_queue_are_counted(cloud, graph):
    client = cloud.test_client()
    before = scrape(client)
    body = json.dumps(text_payload("wamid.M1", body="hola")).encode()
    assert post_webhook(client, body).status_code == 200
    assert post_webhook(client, body).status_code == 200
    assert post_webhook(client, body, secret="otro-secreto").status_code == 401
    assert client.post("/webhook", data=b"{", headers={"X-Hub-Signature-256": meta_signature(APP_SECRET, b"{")},
                       content_type="application/json").status_code == 400
    wait_for_jobs(cloud)
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert grew("whatsapp_webhooks_received_total", source="meta", kind="messages", result="ok") == 1
    assert grew("whatsapp_webhooks_received_total", source="meta", kind="messages", result="duplicate") == 1
    assert grew("whatsapp_webhooks_received_total", source="meta", kind="unknown", result="invalid_signature") == 1
    assert grew("whatsapp_webhooks_received_total", source="meta", kind="unknown", result="invalid_json") == 1
    assert grew("whatsapp_messages_processed_total", result="ok") == 1
    assert grew("whatsapp_flow_seconds_count") == 1
    assert grew("whatsapp_sends_total", result="sent", error_code="") == len(graph.sent()) >= 1
    assert grew("whatsapp_jobs_total", task="outbox.send", result="ok") >= 1
    assert value(after, "whatsapp_job_queue_depth", backend="thread") == 0


def test_failed_send_is_counted_by_error_code(cloud, graph):
    graph.script("POST", PATH, (400, {"error": corpus_api("error_131047_reengagement_object__pywa.json")}))
    client = cloud.test_client()
    before = scrape(client)
    post_webhook(client, json.dumps(text_payload("wamid.M2", body="hola")).encode())
    wait_for_jobs(cloud)
    after = scrape(client)
    key = ("whatsapp_sends_total", (("error_code", "131047"), ("result", "failed")))
    assert after[key] - before.get(key, 0) == 1


def test_transcription_and_sentiment_timings(client):
    before = scrape(client)
    metrics.observe_transcription(1.5, "ok")
    metrics.observe_transcription(0.2, "skipped")
    metrics.observe_sentiment(0.03, "local")
    metrics.observe_sentiment(2.0, "gemini", "failed")
    after = scrape(client)
    assert value(after, "whatsapp_transcription_seconds_count", result="ok") - \
        value(before, "whatsapp_transcription_seconds_count", result="ok") == 1
    assert value(after, "whatsapp_transcription_seconds_sum", result="ok") - \
        value(before, "whatsapp_transcription_seconds_sum", result="ok") == pytest.approx(1.5)
    assert value(after, "whatsapp_sentiment_seconds_count", provider="gemini", result="failed") - \
        value(before, "whatsapp_sentiment_seconds_count", provider="gemini", result="failed") == 1


def test_logs_name_the_wamid_but_never_the_body_or_a_secret(cloud, graph, caplog):
    client = cloud.test_client()
    caplog.set_level(logging.DEBUG)
    body = json.dumps(text_payload("wamid.LOG1", body=f"hola {SECRET_WORDS}")).encode()
    assert post_webhook(client, body).status_code == 200
    wait_for_jobs(cloud)
    assert graph.sent(), "the bot did not answer"
    info = [record for record in caplog.records if record.levelno >= logging.INFO]
    text = "\n".join(record.getMessage() for record in info)
    assert "wamid.LOG1" in text
    sent_wamids = [line for line in text.splitlines() if line.startswith("sent message=")]
    assert sent_wamids and all("wamid=wamid.out." in line for line in sent_wamids)
    assert any(line.startswith("job task=outbox.send") for line in text.splitlines())
    replies = [message["text"]["body"] for message in graph.sent() if message.get("type") == "text"]
    for forbidden in [SECRET_WORDS, "test-token", APP_SECRET, cloud.config["SECRET_KEY"], *replies]:
        assert forbidden not in text, forbidden
