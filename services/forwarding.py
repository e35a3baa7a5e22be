"""Each new customer message forwarded to `FORWARD_WEBHOOK_URL` (another system of the business: a CRM, a
ticketing tool) as JSON, in a job: retried with the jobs' backoff while the receiver is unreachable, slow or
answers 429/5xx; stopped with the reason on any other answer. A receiver may see a message twice (an answer
lost on the way back), never zero times while it keeps answering: `message.wamid` tells copies apart."""
import logging

import requests
from flask import current_app

from extensions import db
from models import Message
from services import jobs
from services.exports import message_record
from services.outside import turn

log = logging.getLogger(__name__)
TIMEOUT = (5, 15)  # connect, read (seconds)
RETRIED = {408, 425, 429}
RETRIES = 5


class ForwardError(Exception):
    """The receiver could not take the message now; the job tries again."""


def forward_new(message_ids: list[int]) -> None:
    """Queue the forwarding of just-stored customer messages (nothing when no URL is configured)."""
    if current_app.config["FORWARD_WEBHOOK_URL"]:
        for message_id in message_ids:
            jobs.enqueue("forwarding.forward", message_id)


def payload(message: Message) -> dict:
    chat = message.chat
    return {"event": "message", "numero": chat.numero, "alias": chat.alias, "profile_name": chat.profile_name,
            "message": message_record(message)}


@jobs.task("forwarding.forward", queue=jobs.OUTSIDE, retries=RETRIES, aliases=("services.forwarding.forward_message",))
def forward_message(message_id: int) -> None:
    """Job: post one stored customer message to FORWARD_WEBHOOK_URL (at most OUTSIDE_JOB_THREADS at once)."""
    message = db.session.get(Message, message_id)
    if message is None:
        raise jobs.PermanentJobError(f"el mensaje {message_id} ya no existe")
    url = current_app.config["FORWARD_WEBHOOK_URL"]
    try:
        with turn("forwarding"):
            response = requests.post(url, json=payload(message), timeout=TIMEOUT,
                                     headers={"User-Agent": "WhatsApp-IA", "X-WhatsApp-IA-Event": "message"})
    except requests.RequestException as error:
        raise ForwardError(f"{type(error).__name__}: {error}") from None
    if response.status_code >= 500 or response.status_code in RETRIED:
        raise ForwardError(f"el receptor respondió {response.status_code}")
    if not 200 <= response.status_code < 300:
        log.warning("forward message=%s wamid=%s refused: %s", message.id, message.wamid, response.status_code)
        raise jobs.PermanentJobError(f"el receptor rechazó el mensaje: {response.status_code}")
    log.info("forward message=%s wamid=%s status=%s", message.id, message.wamid, response.status_code)


def gave_up(message_id: int, reason: str) -> None:
    log.error("forward message=%s given up: %s", message_id, reason)


forward_message.gave_up = gave_up
