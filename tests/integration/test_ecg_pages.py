"""ECG reading pages (R7) with the TestClient on a fresh database: a 10 s snippet of MIT-BIH
record 100 (lead MLII, read with ``wfdb``) and a synthetic ambulance snippet; the queue, the
roles (doctor limited to the contracted subjects, ER, patient refused), the strip on paper with
the AF finding, and the report round trip with its audit row."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from shared_data import MITDB_DIR
from test_api_support import api_client, audit_rows
from test_web_support import log_in

from ingest_service import migrate
from ingest_service.web.ecg_paper import detect_r_peaks

wfdb = pytest.importorskip("wfdb")

HOME_SUBJECT = "pecg100"
AMBULANCE_SUBJECT = "pecgamb"
RECORD = MITDB_DIR / "100"

pytestmark = pytest.mark.skipif(
    not RECORD.with_suffix(".dat").is_file(), reason="MIT-BIH record 100 absent"
)


def _mitdb_100(seconds: float = 10.0) -> tuple[np.ndarray, float, float]:
    """(int16 counts minus baseline, scale mV/count, fs) of lead MLII's first seconds."""
    record = wfdb.rdrecord(str(RECORD), physical=False, sampto=int(seconds * 360))
    lead = list(record.sig_name).index("MLII")
    counts = record.d_signal[:, lead].astype(np.int64) - int(record.baseline[lead])
    return counts.astype("<i2"), 1.0 / float(record.adc_gain[lead]), float(record.fs)


def _insert(
    conn: psycopg.Connection[tuple[object, ...]],
    subject: str,
    device: str,
    start: datetime,
    counts: np.ndarray,
    scale: float,
    fs: float,
    incident: str | None = None,
    source: str = "replay",
) -> int:
    row = conn.execute(
        "INSERT INTO waveforms (device, channel, start_time, subject, gateway, sample_rate_hz,"
        " unit, scale, n_samples, samples, source, incident, batch_id, received_at)"
        " VALUES (%s, 'ecg_ii', %s, %s, 'gw-ecg', %s, 'mV', %s, %s, %s, %s, %s, 'b1', now())"
        " RETURNING id",
        (device, start, subject, fs, scale, counts.size, counts.tobytes(), source, incident),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def seed(database_url: str) -> tuple[int, int]:
    """MIT-BIH 100 as a home snippet (an hour ago) and a synthetic ambulance one (newer)."""
    counts, scale, fs = _mitdb_100()
    now = datetime.now(UTC)
    synthetic = (np.sin(np.arange(2500) / 250 * 2 * np.pi) * 100).astype("<i2")  # synthetic
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        home = _insert(conn, HOME_SUBJECT, "patch-1", now - timedelta(hours=1), counts, scale, fs)
        ambulance = _insert(
            conn, AMBULANCE_SUBJECT, "monitor-7", now - timedelta(minutes=5), synthetic,
            0.005, 250.0, incident="inc-ecg-1", source="sim",
        )  # fmt: skip
        conn.commit()
    return home, ambulance


def test_r_peaks_of_mitdb_100_match_the_annotations() -> None:
    counts, scale, fs = _mitdb_100(60.0)
    found = detect_r_peaks(counts.astype(float) * scale, fs)
    ann = wfdb.rdann(str(RECORD), "atr", sampto=int(60 * fs))
    beats = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in "NAV"])
    reference = beats / fs
    matched = sum(np.min(np.abs(reference - t)) <= 0.05 for t in found)
    assert abs(found.size - reference.size) <= 1 and matched >= reference.size - 1


def test_queue_roles_strip_and_report_round_trip(database_url: str, tmp_path: Path) -> None:
    home, ambulance = seed(database_url)
    with api_client(database_url, tmp_path) as client:
        log_in(client, "er", "er-nurse")
        queue = client.get("/ecg")
        assert queue.status_code == 200, queue.text
        assert "default-src 'self'" in queue.headers["content-security-policy"]
        html = queue.text
        assert html.index(f'id="snippet-{ambulance}"') < html.index(f'id="snippet-{home}"')
        assert "Ambulance (incident" in html and "Home" in html

        strip = client.get(f"/ecg/{home}")
        assert strip.status_code == 200, strip.text
        page = strip.text
        assert "<script>" not in page  # nothing inline: the strip is SVG built on the server
        assert 'width="260.0mm"' in page and 'viewBox="0 0 260.0 40.0"' in page
        assert 'data-mm-per-s="25.0" data-mm-per-mv="10.0"' in page
        assert re.search(r"Beats found: <strong>1[23]</strong>", page)
        assert "AF detector: no atrial fibrillation found" in page  # record 100 is sinus
        short = client.get(f"/ecg/{ambulance}").text
        assert "Not enough data" in short  # synthetic 1 Hz sine: no QRS to find

        csrf = log_in(client, "doctor", "dr-li", subjects=[HOME_SUBJECT])
        assert f'id="snippet-{ambulance}"' not in client.get("/ecg").text
        assert client.get(f"/ecg/{ambulance}").status_code == 403
        refused = client.post(f"/ecg/{ambulance}/report", data={"csrf": csrf, "rhythm": "sinus"})
        assert refused.status_code == 403
        assert client.post(f"/ecg/{home}/report", data={"rhythm": "sinus"}).status_code == 403
        bad = client.post(f"/ecg/{home}/report", data={"csrf": csrf, "rhythm": "other"})
        assert bad.status_code == 422 and "Describe the rhythm" in bad.text
        filed = client.post(
            f"/ecg/{home}/report",
            data={
                "csrf": csrf, "rhythm": "sinus", "findings": ["pac"],
                "note": "Sinus rhythm 75/min, one APC.",
            },
            follow_redirects=False,
        )  # fmt: skip
        assert filed.status_code == 303 and filed.headers["location"] == f"/ecg?reported={home}"
        after = client.get("/ecg").text
        assert f'id="snippet-{home}"' not in after  # read: it left the queue
        assert "Sinus rhythm" in after
        shown = client.get(f"/ecg/{home}").text
        assert 'id="ecg-report"' in shown and "Sinus rhythm 75/min, one APC." in shown
        assert "Supraventricular ectopics" in shown and "doctor:dr-li" in shown
        again = client.post(f"/ecg/{home}/report", data={"csrf": csrf, "rhythm": "af"})
        assert again.status_code == 409

        log_in(client, "patient", "p1", subject=HOME_SUBJECT)
        assert client.get("/ecg").status_code == 403
        assert client.get(f"/ecg/{home}").status_code == 403
        assert client.get("/ecg/999999").status_code == 403  # role checked before existence

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT waveform_id, subject, rhythm, findings, note, reader, af_finding"
            " FROM ecg_reports"
        ).fetchall()
    assert len(rows) == 1
    waveform_id, subject, rhythm, findings, _note, reader, finding = rows[0]
    assert (waveform_id, subject, rhythm, findings) == (home, HOME_SUBJECT, "sinus", ["pac"])
    assert reader == "doctor:dr-li" and finding["status"] == "no_af"
    audit = audit_rows(database_url)
    reported = [r for r in audit if r[1] == "ecg_reported"]
    assert len(reported) == 1
    actor, _, resource, detail = reported[0]
    assert actor == "doctor:dr-li" and resource == f"ecg/{home}"
    assert detail["subject"] == HOME_SUBJECT and detail["rhythm"] == "sinus"
    denied = {(r[1], r[2]) for r in audit if r[1] in {"read_denied", "write_denied"}}
    assert ("read_denied", f"web/ecg/{ambulance}") in denied
    assert ("write_denied", f"ecg/{ambulance}") in denied
    assert ("read_denied", "web/ecg/queue") in denied
    reads = [r for r in audit if r[1] == "read" and r[2] == f"web/ecg/{home}"]
    assert reads and reads[0][3]["subject"] == HOME_SUBJECT
