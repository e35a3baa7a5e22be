"""Property: whatever surrounds them in a webhook body, valid messages are stored exactly once and the webhook
never answers 500. Hypothesis builds the bodies: valid messages of several types, with bad siblings, broken
contacts and statuses, junk changes and entries, odd text (lone surrogates, controls, huge numbers) around them.
The budget is fixed (`max_examples`) so the suite's time is too."""
import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from extensions import db
from models import Message
from tests.conftest import post_webhook, wait_for_jobs

BUDGET = settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                         HealthCheck.data_too_large])

odd_text = st.one_of(st.text(max_size=12), st.sampled_from(["\ud800", "a\udfffb", "\x00\r\n", "=cmd|' /C calc'!A0",
                                                            "😀" * 3, " ", "", "../../x"]))
scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                   st.floats(allow_nan=False, allow_infinity=False), odd_text)
junk = st.recursive(scalar, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(odd_text, children, max_size=3)), max_leaves=6)
numbers = st.sampled_from(["5215512345678", "5215500000001", "573001234567", "14155550100"])
FIELDS = ["from", "id", "timestamp", "type", "text", "interactive", "location", "image", "context", "edit",
          "revoke", "reaction", "contacts", "errors", "referral", "button"]


@st.composite
def valid_message(draw) -> dict:
    kind = draw(st.sampled_from(["text", "interactive", "location", "reaction", "image", "button"]))
    body = {
        "text": {"body": draw(st.text(min_size=1, max_size=40))},
        "interactive": {"type": "button_reply", "button_reply": {"id": draw(st.text(max_size=10)),
                                                                 "title": draw(st.text(max_size=20))}},
        "location": {"latitude": draw(st.floats(-90, 90)), "longitude": draw(st.floats(-180, 180))},
        "reaction": {"message_id": "wamid.x", "emoji": "👍"},
        "image": {"id": str(draw(st.integers(1, 10**15))), "mime_type": "image/jpeg"},
        "button": {"text": draw(st.text(max_size=20)), "payload": draw(st.text(max_size=20))},
    }[kind]
    return {"from": draw(numbers), "id": f"wamid.PROP.{uuid.uuid4().hex}", "timestamp": "1700000000",
            "type": kind, kind: body}


@st.composite
def bad_message(draw):
    """Something in a messages list that is not a valid message: any JSON, or a message with odd fields."""
    if draw(st.booleans()):
        return draw(junk)
    message = draw(st.dictionaries(st.sampled_from(FIELDS), junk, max_size=6))
    if draw(st.booleans()):  # looks right but one field is wrong
        message.setdefault("id", f"wamid.BAD.{uuid.uuid4().hex}")
        message.setdefault("from", draw(st.one_of(junk, numbers)))
    if message.get("id") is not None and not isinstance(message.get("id"), str):
        return message
    if isinstance(message.get("id"), str):
        message["id"] = f"wamid.BAD.{uuid.uuid4().hex}"  # never a valid message's wamid
    return message


@st.composite
def webhook_body(draw) -> tuple[dict, list[str]]:
    """A Meta webhook body and the wamids of the valid messages in it."""
    valid = draw(st.lists(valid_message(), min_size=1, max_size=3))
    changes, pending = [], list(valid)
    for _ in range(draw(st.integers(1, 2))):
        take = pending if not changes or draw(st.booleans()) else []
        mine, pending = list(take), [m for m in pending if m not in take]
        messages = mine + draw(st.lists(bad_message(), max_size=3))
        messages = draw(st.permutations(messages)) if messages else messages
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "15550000000", "phone_number_id": "1122334455667"},
                 "messages": messages}
        contacts = draw(st.one_of(
            st.just([{"profile": {"name": "Cliente"}, "wa_id": m["from"]} for m in mine]),
            junk, st.lists(junk, max_size=3)))
        if draw(st.booleans()):
            value["contacts"] = contacts
        if draw(st.booleans()):
            value["statuses"] = draw(st.one_of(junk, st.lists(st.one_of(junk, st.fixed_dictionaries(
                {"id": odd_text, "status": st.sampled_from(["sent", "read", "failed"]),
                 "recipient_id": st.one_of(numbers, junk), "timestamp": junk, "errors": junk})), max_size=3)))
        if draw(st.booleans()):
            value[draw(odd_text)] = draw(junk)
        changes.append({"field": "messages", "value": value})
    changes += draw(st.lists(st.one_of(junk, st.fixed_dictionaries({"field": odd_text, "value": junk})), max_size=2))
    changes = draw(st.permutations(changes))
    entries = [{"id": "1", "changes": changes}] + draw(st.lists(junk, max_size=2))
    body = {"object": "whatsapp_business_account", "entry": draw(st.permutations(entries))}
    return body, [m["id"] for m in valid]


@BUDGET
@given(case=webhook_body())
def test_valid_messages_are_stored_exactly_once_whatever_surrounds_them(app, client, case):
    body, wamids = case
    raw = json.dumps(body).encode()  # lone surrogates travel as \ud800 escapes, as in JSON from anywhere
    first, second = post_webhook(client, raw), post_webhook(client, raw)  # Meta's retry: still once
    assert (first.status_code, second.status_code) == (200, 200), first.get_data(as_text=True)
    wait_for_jobs(app)
    with app.app_context():
        counts = dict(db.session.execute(select(Message.wamid, func.count()).where(Message.wamid.in_(wamids))
                                         .group_by(Message.wamid)).all())
    assert counts == {wamid: 1 for wamid in wamids}


@BUDGET
@given(raw=st.one_of(st.binary(max_size=200), junk.map(lambda value: json.dumps(value).encode())))
def test_no_body_makes_the_webhook_answer_500(app, client, raw):
    response = post_webhook(client, raw)
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    wait_for_jobs(app)
