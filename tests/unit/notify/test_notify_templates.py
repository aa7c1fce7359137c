"""Notification templates: structured fields only, no personal data beyond the pseudonym."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alert_rules.lifecycle import Notification, TrackedAlert
from ingest_service.notifier import (
    WITHHELD,
    ChannelKind,
    channel_kind,
    doctor_link,
    notice_for_alert,
    notice_for_lifecycle,
    render,
    safe_subject,
    split_urls,
)
from vitals import Alert

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = "https://clinic.example/"
#: A well-formed GB 11643 resident ID (check character valid) and other personal data.
PLANTED_ID = "11010519491231002X"
PLANTED_DIGITS = "110105194912310021"
KINDS: tuple[ChannelKind, ...] = ("text", "email", "json")


def spo2_alert(message: str = "SpO2 88 % < 90 %", subject: str = "p-7Q2MZK4A") -> Alert:
    return Alert(
        subject=subject,
        rule="spo2_low",
        severity="high",
        time=datetime(2024, 5, 1, 6, 3, tzinfo=UTC),
        message=message,
        metric="spo2",
        value=88.0,
    )


def rendered_text(alert: Alert, kind: ChannelKind) -> str:
    message = render(notice_for_alert(alert, BASE), kind, SHANGHAI)
    return message.title + "\n" + message.body


@pytest.mark.parametrize("kind", KINDS)
def test_a_planted_resident_id_in_the_alert_message_never_reaches_a_message(
    kind: ChannelKind,
) -> None:
    alert = spo2_alert(
        f"SpO2 88 % for Zhang San, ID {PLANTED_ID} / {PLANTED_DIGITS}, 5 Chaoyang Road"
    )
    text = rendered_text(alert, kind)
    for secret in (PLANTED_ID, PLANTED_DIGITS, "Zhang", "Chaoyang"):
        assert secret not in text
    assert "p-7Q2MZK4A" in text  # the pseudonym is what the doctor needs


@pytest.mark.parametrize("kind", KINDS)
def test_an_id_like_subject_is_withheld_in_text_and_link(kind: ChannelKind) -> None:
    text = rendered_text(spo2_alert(subject=PLANTED_DIGITS), kind)
    assert PLANTED_DIGITS not in text
    assert WITHHELD in text
    assert text.count("/doctor/subjects") >= 1


@given(st.text(max_size=200), st.text(max_size=200))
def test_messages_are_rendered_from_structured_fields_only(first: str, second: str) -> None:
    """Whatever the free-text message says, the notice (and so every template) is the same."""
    assert notice_for_alert(spo2_alert(first), BASE) == notice_for_alert(spo2_alert(second), BASE)


def test_short_text_carries_rule_severity_subject_value_time_and_link() -> None:
    body = render(notice_for_alert(spo2_alert(), BASE), "text", SHANGHAI).body
    assert body == (
        "[HIGH] spo2_low · subject p-7Q2MZK4A · spo2 88 % · 2024-05-01 14:03 CST · "
        "https://clinic.example/doctor/subjects/p-7Q2MZK4A"
    )


def test_json_template_is_a_document_of_the_structured_fields() -> None:
    message = render(notice_for_alert(spo2_alert(), BASE), "json", SHANGHAI)
    assert json.loads(message.body) == {
        "schema": "vitalstream.notification/1",
        "reason": "new",
        "subject": "p-7Q2MZK4A",
        "rule": "spo2_low",
        "severity": "high",
        "time": "2024-05-01T06:03:00+00:00",
        "metric": "spo2",
        "value": 88.0,
        "unit": "%",
        "contact": None,
        "link": "https://clinic.example/doctor/subjects/p-7Q2MZK4A",
    }
    assert message.title == "vitalstream HIGH: spo2_low (subject p-7Q2MZK4A)"


def test_email_template_says_why_and_where_to_look() -> None:
    body = render(notice_for_alert(spo2_alert(), BASE), "email", SHANGHAI).body
    assert "Subject (pseudonym): p-7Q2MZK4A" in body
    assert "Measured: spo2 88 %" in body
    assert "Time: 2024-05-01 14:03 CST" in body
    assert "Open: https://clinic.example/doctor/subjects/p-7Q2MZK4A" in body


def test_an_escalation_names_the_contact_and_says_it_is_one() -> None:
    tracked = TrackedAlert(
        alert_id="a1",
        subject="p-7Q2MZK4A",
        rule="news2_emergency",
        severity="critical",
        message=f"NEWS2 9 for {PLANTED_ID}",
        raised_at=datetime(2024, 5, 1, 6, 3, tzinfo=UTC),
    )
    notification = Notification("a1", "duty-doctor", "escalation", datetime.now(UTC))
    notice = notice_for_lifecycle(notification, tracked, BASE)
    text = render(notice, "text", SHANGHAI)
    assert text.title.startswith("vitalstream CRITICAL: escalated: news2_emergency")
    email = render(notice, "email", SHANGHAI).body
    assert "Contact: duty-doctor" in email
    assert PLANTED_ID not in email + text.body


def test_alert_without_value_renders_without_a_measured_part() -> None:
    alert = Alert(
        subject="p-1",
        rule="wearable_silent",
        severity="low",
        time=datetime(2024, 5, 1, tzinfo=UTC),
        message="no data",
    )
    body = render(notice_for_alert(alert, BASE), "text", SHANGHAI).body
    assert body.startswith("[LOW] wearable_silent · subject p-1 · 2024-05-01 08:00 CST")


def test_links_quote_the_subject_and_strip_the_trailing_slash() -> None:
    assert doctor_link("http://h:8000/", "p a") == "http://h:8000/doctor/subjects/p%20a"
    assert safe_subject("13800138000") == WITHHELD  # a mobile number
    assert safe_subject("sim-01") == "sim-01"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("json://127.0.0.1:8080/hook", "json"),
        ("jsons://hooks.example/x", "json"),
        ("mailto://user:pw@mail.example?to=dr@clinic.example", "email"),
        ("mailtos://user:pw@mail.example", "email"),
        ("dingtalk://token/", "text"),
        ("wecombot://key", "text"),
        ("slack://a/b/c", "text"),
    ],
)
def test_channel_kind_follows_the_schema(url: str, kind: ChannelKind) -> None:
    assert channel_kind(url) == kind


def test_split_urls_keeps_commas_inside_a_url() -> None:
    text = "mailto://u:p@mail.example?to=a@x.example,b@x.example , json://127.0.0.1:9/h,"
    assert split_urls(text) == (
        "mailto://u:p@mail.example?to=a@x.example,b@x.example",
        "json://127.0.0.1:9/h",
    )
    assert split_urls("") == ()
