"""The ECG reader pages, the ER board and incident pages, the rule settings of the doctor's
patient page and the scripts' status texts in Chinese (``?lang=zh``, then the cookie), with the
TestClient on a real database: key Chinese labels are there and the English ones are gone."""

# The Chinese labels use full-width punctuation, as the catalogue does.
# ruff: noqa: RUF001

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from test_api_support import api_client
from test_incident_support import STROKE, STROKE_SUBJECT, er_log_in, seed_incidents
from test_web_support import GAMMA, log_in, seed

from ingest_service.web.i18n import CATALOGUE

HOME_SUBJECT = "pi18n01"


def _snippet(database_url: str, subject: str, incident: str | None, start: datetime) -> int:
    """A 10 s synthetic lead II snippet (a 1 Hz sine: too few beats for the AF detector)."""
    counts = (np.sin(np.arange(2500) / 250 * 2 * np.pi) * 100).astype("<i2")  # synthetic
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO waveforms (device, channel, start_time, subject, gateway,"
            " sample_rate_hz, unit, scale, n_samples, samples, source, incident, batch_id,"
            " received_at) VALUES (%s, 'ecg_ii', %s, %s, 'gw-i18n', 250, 'mV', 0.005, %s, %s,"
            " 'sim', %s, 'b-i18n', now()) RETURNING id",
            ("monitor-i18n", start, subject, counts.size, counts.tobytes(), incident),
        ).fetchone()
        conn.commit()
    assert row is not None
    return int(str(row[0]))


def _gone(html: str, english: list[str]) -> None:
    left = [text for text in english if text in html]
    assert left == [], f"still English: {left}"


def _messages(html: str) -> dict[str, str]:
    marker = '<script type="application/json" id="vs-messages">'
    parsed: dict[str, str] = json.loads(html.split(marker)[1].split("</script>", maxsplit=1)[0])
    return parsed


def test_catalogue_entries_have_both_languages() -> None:
    for key, entry in CATALOGUE.items():
        assert entry["en"].count("{") == entry["zh"].count("{"), key
        if entry["en"]:
            assert entry["zh"], key


def test_ecg_and_er_pages_in_chinese(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    seed_incidents(database_url, now)
    ambulance = _snippet(database_url, STROKE_SUBJECT, STROKE, now - timedelta(minutes=3))
    home = _snippet(database_url, HOME_SUBJECT, None, now - timedelta(hours=1))
    with api_client(database_url, tmp_path) as client:
        csrf = er_log_in(client, "er", "er-nurse")

        board = client.get("/er", params={"lang": "zh"})
        assert board.status_code == 200, board.text
        html = board.text
        assert '<html lang="zh-CN">' in html
        for label in ("急诊看板", "即将到达的救护车", "救治通道", "预计到达", "卒中团队", "未确认"):
            assert label in html, label
        assert 'id="er-rows"' in html and 'data-live-board="/er/events"' in html
        _gone(
            html,
            ["Incoming ambulances", "ER board", "Teams pre-alerted", "Stroke team",
             "not acknowledged", "Last data", "Updates live", "last data"],
        )  # fmt: skip
        assert _messages(html)["er_last_data_s"] == "最近数据：{n} 秒前"
        assert "卒中团队" in client.get("/er/rows").text  # the cookie keeps the language

        page = client.get(f"/er/incidents/{STROKE}")
        assert page.status_code == 200, page.text
        html = page.text
        labels = ("最新数值", "呼救以来的趋势", "时间线", "预警", "ATMIST 交接", "卒中", "心率")
        for label in labels:
            assert label in html, label
        assert "（身份未明，临时编号）" in html and "未配置通知渠道" in html
        assert "最新心电图" in html and "尚未判读" in html and "标准心电图纸" in html
        _gone(
            html,
            ["Latest values", "Trends since the call", "Timeline", "Pre-alerts",
             "ATMIST handover", "Acknowledge for the", "unidentified, temporary id",
             "Not sent to the ER", "Latest ECG", "standard ECG paper", ">heart rate<"],
        )  # fmt: skip
        marker = '<script type="application/json" id="chart-config">'
        config = json.loads(html.split(marker)[1].split("</script>", maxsplit=1)[0])
        charts = {c["id"]: c for c in config["charts"]}
        assert charts["heart_rate"]["title"] == "心率" and config["timeLabel"] == "时间"
        assert charts["bp"]["labels"] == ["收缩压", "舒张压"]

        queue = client.get("/ecg")
        assert queue.status_code == 200, queue.text
        html = queue.text
        for label in ("心电图判读", "待判读", "救护车（急救事件", "居家", "导联", "暂无报告"):
            assert label in html, label
        assert f'id="snippet-{ambulance}"' in html and f'id="snippet-{home}"' in html
        _gone(html, ["ECG reading", "Awaiting a report", "Ambulance", "Home", "No reports yet"])

        strip = client.get(f"/ecg/{ambulance}")
        assert strip.status_code == 200, strip.text
        html = strip.text
        for label in ("心律自动筛查", "数据不足", "窦性心律", "心房颤动", "室性早搏", "提交报告"):
            assert label in html, label
        assert 'id="ecg-paper"' in html and 'name="rhythm"' in html
        _gone(
            html,
            ["Rhythm screening", "Not enough data", "Sinus rhythm", "Atrial fibrillation",
             "File the report", "Report text", "standard ECG paper", "Beats found"],
        )  # fmt: skip

        bad = client.post(f"/ecg/{ambulance}/report", data={"csrf": csrf, "rhythm": "other"})
        assert bad.status_code == 422 and "请在报告内容中描述该心律。" in bad.text
        assert "Describe the rhythm" not in bad.text
        filed = client.post(
            f"/ecg/{ambulance}/report",
            data={"csrf": csrf, "rhythm": "sinus", "findings": ["pac", "pvc"], "note": "窦律"},
            follow_redirects=False,
        )
        assert filed.status_code == 303, filed.text
        queue = client.get(filed.headers["location"]).text
        assert f"片段 {ambulance} 的报告已保存。" in queue and "最新报告" in queue
        shown = client.get(f"/ecg/{ambulance}").text
        assert "室上性早搏、室性早搏" in shown and "判读人" in shown
        _gone(shown, ["Supraventricular ectopics", "Reported by"])

        block = client.get(f"/er/incidents/{STROKE}").text  # the ER-facing report block
        assert 'id="ecg-report"' in block and "窦性心律" in block and "心电图条带及报告" in block
        _gone(block, ["Sinus rhythm", "the strip and its report", "Reported by", "Findings"])

        english = client.get(f"/er/incidents/{STROKE}", params={"lang": "en"}).text
        assert "Sinus rhythm" in english and "Latest values" in english
        assert _messages(english)["er_last_data_s"] == "last data {n} s ago"


def test_rule_settings_and_script_texts_in_chinese(database_url: str, tmp_path: Path) -> None:
    seed(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        csrf = log_in(client, "doctor", "dr-li", subjects=[GAMMA])
        page = client.get(f"/doctor/subjects/{GAMMA}", params={"lang": "zh"})
        assert page.status_code == 200, page.text
        html = page.text
        assert "规则设置" in html and "保存规则设置" in html and "(core, 危急)" in html
        _gone(html, ["Rule settings", "Save rule settings", "(core, critical)"])
        messages = _messages(html)
        assert messages["js_failed"] == "操作失败（HTTP {code}）。请刷新页面后重试。"
        assert messages["js_done"] == "已完成。"

        refused = client.post(
            f"/doctor/subjects/{GAMMA}/rules",
            data={"csrf": csrf, "packs": ["nope"], "reason": ""},
        )
        assert refused.status_code == 422, refused.text
        for label in ("设置未保存：", "未知的规则包：nope", "修改原因至少需要 5 个字符"):
            assert label in refused.text, label
        _gone(refused.text, ["unknown packs", "a reason of at least"])

        english = client.get(f"/doctor/subjects/{GAMMA}", params={"lang": "en"}).text
        assert "(core, critical)" in english
        assert _messages(english)["js_done"] == "Done."
