"""MIMIC-II numerics record -> the backtest's long-format CSV (test support and a script).

``alert_rules`` must not depend on wfdb (a dev dependency), so reading PhysioNet records
lives here. In MIMIC-II numerics a value of 0 means "not measured / sensor off" and NaN
means "no sample" (NBP between cuff cycles): both become an empty value (no value).

Channel map (catalogue names): HR -> heart_rate, PULSE -> pulse_rate, RESP ->
respiratory_rate, SpO2 -> spo2, NBPSys/NBPDias/NBPMean -> bp_systolic/bp_diastolic/bp_mean.
ABPSys/ABPDias/ABPMean (invasive arterial line) are left out by default: the catalogue's
bp_* are non-invasive (MDC_PRESS_BLD_NONINV_*), an arterial line reads differently (higher
systolic, flush and damping artefacts), and mixing the two in one series would make
consecutive-reading rules compare different methods. In this record ABP has 7-8 minutes of
data in the last hour only. ``include_abp=True`` maps them onto bp_* anyway (where NBP is
absent), for a deliberate experiment.

Script use::

    python tests/unit/alert_rules/mimic_numerics.py \
        ../shared/data/mimic2wdb_numerics/s00001-2896-10-10-00-31n > s00001.csv  (PYTHONPATH=tests)
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from shared_data import MIMIC_DIR

RECORD = "s00001-2896-10-10-00-31n"

CHANNELS = {
    "HR": "heart_rate",
    "PULSE": "pulse_rate",
    "RESP": "respiratory_rate",
    "SpO2": "spo2",
    "NBPSys": "bp_systolic",
    "NBPDias": "bp_diastolic",
    "NBPMean": "bp_mean",
}
ABP_CHANNELS = {"ABPSys": "bp_systolic", "ABPDias": "bp_diastolic", "ABPMean": "bp_mean"}


def _wfdb() -> Any:
    try:
        import wfdb
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise RuntimeError("reading MIMIC records needs 'wfdb': pip install -e '.[dev]'") from exc
    return wfdb


def numerics_rows(
    record_path: Path, subject: str = "mimic2-s00001", *, include_abp: bool = False
) -> Iterator[tuple[str, str, str, str]]:
    """(subject, ISO time, metric, value) rows; value "" where the monitor had none (0/NaN)."""
    record = _wfdb().rdrecord(str(record_path))
    start = datetime.combine(record.base_date, record.base_time)
    step = timedelta(seconds=1.0 / float(record.fs))
    names = list(record.sig_name)
    mapping = dict(CHANNELS)
    signals = record.p_signal
    for index in range(signals.shape[0]):
        moment = (start + index * step).isoformat()
        per_metric: dict[str, str] = {}
        for channel, metric in mapping.items():
            if channel not in names:
                continue
            per_metric[metric] = _value(signals[index, names.index(channel)])
        if include_abp:
            for channel, metric in ABP_CHANNELS.items():
                if channel in names and not per_metric.get(metric):
                    per_metric[metric] = _value(signals[index, names.index(channel)])
        for metric, text in per_metric.items():
            yield (subject, moment, metric, text)


def _value(raw: float) -> str:
    value = float(raw)
    if math.isnan(value) or value == 0.0:
        return ""  # 0 = sensor off / not measured; NaN = no sample: no value
    return f"{value:g}"


def write_csv(rows: Iterator[tuple[str, str, str, str]], out: TextIO) -> int:
    """Write the backtest CSV; returns the number of rows."""
    writer = csv.writer(out)
    writer.writerow(["subject", "time", "metric", "value"])
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path, nargs="?", default=MIMIC_DIR / RECORD)
    parser.add_argument("--include-abp", action="store_true")
    args = parser.parse_args()
    write_csv(numerics_rows(args.record, include_abp=args.include_abp), sys.stdout)


if __name__ == "__main__":
    main()
