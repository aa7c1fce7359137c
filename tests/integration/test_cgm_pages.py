"""The CGM pages against a real PostgreSQL: the doctor's AGP page (numbers, roles, audit) and
the patient's daily report in both languages. The sensor data is SYNTHETIC, built from a rule
so the expected numbers can be worked out by hand."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from test_api_support import api_client, audit_rows
from test_web_support import GAMMA, OTHER, log_in, token, write

from vitals import Reading

SHANGHAI = ZoneInfo("Asia/Shanghai")  # VITALSTREAM_WEB_TIMEZONE's default


def synthetic_sensor(subject: str, now: datetime) -> list[Reading]:
    """SYNTHETIC 14 days of a 5-minute sensor ending at ``now``: 00:00-02:00 local reads
    3.5 mmol/L, 12:00-16:00 reads 12.0, the rest 7.0. Every time of day is covered exactly 14
    times, so TIR = 20/24 - 4/24 ... = 75 %, TBR = 2/24 = 8.33 %, TAR = 4/24 = 16.67 %."""
    out: list[Reading] = []
    for step in range(14 * 288):
        moment = now - timedelta(minutes=5 * step)
        hour = moment.astimezone(SHANGHAI).hour
        value = 3.5 if hour < 2 else 12.0 if 12 <= hour < 16 else 7.0
        out.append(
            Reading(subject=subject, device="cgm-1", metric="glucose", value=value,
                    unit="mmol/L", time=moment, source="sim")
        )  # fmt: skip
    return sorted(out, key=lambda r: r.time)


def _config(text: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="cgm-config">(.*?)</script>', text, re.S)
    assert found is not None
    config: dict[str, object] = json.loads(found.group(1))
    return config


def _row(text: str, row_id: str) -> str:
    start = text.index(f'id="{row_id}"')
    return text[start : text.index("</tr>", start)]


def test_doctor_sees_the_agp_and_the_targets(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    write(database_url, synthetic_sensor(GAMMA, now), now, chunk=1000)
    with api_client(database_url, tmp_path) as client:
        log_in(client, "doctor", "dr-li", subjects=[GAMMA])
        page = client.get(f"/doctor/subjects/{GAMMA}/cgm", params={"lang": "en"})
        older = client.get(
            f"/doctor/subjects/{GAMMA}/cgm", params={"population": "older_high_risk"}
        )
        chinese = client.get(f"/doctor/subjects/{GAMMA}/cgm", params={"lang": "zh"})
        subject_page = client.get(f"/doctor/subjects/{GAMMA}")
    assert page.status_code == 200, page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script (CSP)
    assert "4032 readings: 100 % of 14 days" in page.text
    tir = _row(page.text, "cgm-tir")
    assert "&gt; 70 %" in tir and "75.0 %" in tir and ">met<" in tir
    tbr = _row(page.text, "cgm-tbr")
    assert "&lt; 4 %" in tbr and "8.3 %" in tbr and "not met" in tbr
    tar = _row(page.text, "cgm-tar")
    assert "16.7 %" in tar and ">met<" in tar
    # Mean (2 x 3.5 + 4 x 12 + 18 x 7) / 24 = 7.542; GMI 3.31 + 0.43056 x 7.542 = 6.56 %.
    assert "7.5 mmol/L" in _row(page.text, "cgm-mean")
    assert "6.6 %" in _row(page.text, "cgm-gmi")
    config = _config(page.text)
    assert config["kind"] == "agp"
    data = config["data"]
    assert isinstance(data, list) and len(data) == 6 and len(data[0]) == 96
    # Slot 01:00 local (index 4) reads 3.5 every day, 13:00 (index 52) 12.0, 08:00 7.0.
    for index, value in ((4, 3.5), (52, 12.0), (32, 7.0)):
        assert [data[k][index] for k in range(1, 6)] == [value] * 5
    assert "TIR" in page.text and "2026" not in tir
    # Older / high-risk adults: TIR > 50 %, TBR < 1 % (Battelino 2019).
    assert "&gt; 50 %" in _row(older.text, "cgm-tir")
    assert chinese.status_code == 200 and "动态葡萄糖图谱" in chinese.text
    assert "未达标" in _row(chinese.text, "cgm-tbr")
    assert f'href="/doctor/subjects/{GAMMA}/cgm"' in subject_page.text
    reads = [r for r in audit_rows(database_url) if r[2] == f"web/subject/{GAMMA}/cgm"]
    assert [r[1] for r in reads] == ["read", "read", "read"]
    assert reads[0][3]["returned"] == 4032 and reads[1][3]["query"]["population"] == (
        "older_high_risk"
    )


def test_cgm_page_roles_are_enforced_and_audited(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    write(database_url, synthetic_sensor(OTHER, now)[-300:], now, chunk=1000)
    with api_client(database_url, tmp_path) as client:
        patient = {"Authorization": f"Bearer {token(client, 'patient', 'u-gamma', subject=GAMMA)}"}
        theirs = client.get(f"/doctor/subjects/{OTHER}/cgm", headers=patient)
        doctor = {"Authorization": f"Bearer {token(client, 'doctor', 'dr-li', subjects=[GAMMA])}"}
        foreign = client.get(f"/doctor/subjects/{OTHER}/cgm", headers=doctor)
        anonymous = client.get(f"/doctor/subjects/{OTHER}/cgm")
        own_as_doctor = client.get("/me/cgm", headers=doctor)
    assert theirs.status_code == 403 and OTHER not in theirs.text.split("<main", 1)[1]
    assert foreign.status_code == 403 and anonymous.status_code == 401
    assert own_as_doctor.status_code == 403
    denied = [r for r in audit_rows(database_url) if r[1] == "read_denied"]
    by = {(r[0], r[2]) for r in denied}
    assert ("patient:u-gamma", f"web/subject/{OTHER}/cgm") in by
    assert ("doctor:dr-li", f"web/subject/{OTHER}/cgm") in by
    assert ("doctor:dr-li", "web/me/cgm") in by
    assert not [r for r in audit_rows(database_url) if r[1] == "read"]


def test_patient_reads_their_cgm_day_in_both_languages(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    write(database_url, synthetic_sensor(GAMMA, now), now, chunk=1000)
    write(database_url, synthetic_sensor(OTHER, now)[-50:], now, chunk=1000)
    yesterday = (now.astimezone(SHANGHAI) - timedelta(days=1)).date().isoformat()
    with api_client(database_url, tmp_path) as client:
        log_in(client, "patient", "u-gamma", subject=GAMMA)
        english = client.get("/me/cgm", params={"day": yesterday, "lang": "en"})
        chinese = client.get("/me/cgm", params={"day": yesterday, "lang": "zh"})
        today = client.get("/me/cgm")
        me = client.get("/me")
    assert english.status_code == 200 and '<html lang="en">' in english.text
    assert 'class="large"' in english.text
    tir = english.text[english.text.index('id="me-cgm-tir"') :]
    assert "75 <span" in tir[:600] and "goal met" in tir[:600] and "more than 70 %" in tir[:600]
    assert "about 18 h 0 min of the day" in tir[:600]  # 75 % of 24 h
    tbr = english.text[english.text.index('id="me-cgm-tbr"') :]
    assert "goal not met" in tbr[:600] and "less than 4 %" in tbr[:600]
    assert "The sensor recorded 100 % of the day." in english.text
    assert _config(english.text)["kind"] == "day"
    assert '<html lang="zh-CN">' in chinese.text
    assert "在目标范围内的时间" in chinese.text and "达到目标" in chinese.text
    assert "未达到目标" in chinese.text and "目标：高于 70%" in chinese.text  # noqa: RUF001
    assert today.status_code == 200 and '<html lang="zh-CN">' in today.text  # remembered
    assert 'href="/me/cgm"' in me.text
    assert OTHER not in english.text
    reads = [r for r in audit_rows(database_url) if r[2] == "web/me/cgm"]
    assert len(reads) == 3 and reads[0][3]["subject"] == GAMMA
    assert reads[0][3]["query"]["day"] == yesterday
