"""Tables that turn HL7 OBX codes and units into catalogue metrics (data, not vendor branches).

A reader audits these tables against the documents cited in each row's ``source``; the decoder
in :mod:`firmware_bridge.hl7` only looks rows up. Four code systems are covered:

* ``MDC`` — IEEE 11073-10101 nomenclature as sent in OBX-3 by IHE PCD-01 (``150456^
  MDC_PULS_OXIM_SAT_O2^MDC``, code = partition << 16 | term code). Catalogue metrics carry their
  own MDC code (:func:`vitals.by_mdc_code`); :data:`MDC_ALIASES` adds the other codes for the same
  quantity that monitors really send (cuff pressure, generic temperature, impedance RR ...).
* ``MDIL`` — Philips IntelliVue Information Center HL7 export: ``0002-4182^HR^MDIL``. The code is
  the 11073 partition and term code in hex, so a code not listed falls back to the MDC lookup.
* ``99MNDRY`` / legacy Mindray PDS — Mindray's private numeric codes. The legacy PDS protocol
  (iPM, iMEC, T series; HL7 2.3.1) sends ``101^HR`` with no coding system, so those rows match
  only when both the code and the label agree.
* ``99COMEN`` — Comen local codes. Comen monitors send their vitals with MDC codes; the local
  rows are context (ACVPU, measurement site, operator) that is deliberately not a vital.

Units (OBX-6) are mapped to UCUM by :data:`UNIT_ALIASES` and converted once, to the catalogue's
canonical unit, by :data:`CONVERSIONS`. "No value" sentinels are in :data:`SENTINELS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vitals import CATALOGUE, by_mdc_code

# -- sources ------------------------------------------------------------------------------------
# Keys used in the ``source`` column; docs/decoders-hl7.md and tests/fixtures/hl7/SOURCE.md give
# the full references.
IEEE_10101 = "ISO/IEEE 11073-10101 nomenclature (term codes), via the vitals catalogue"
IHE_PCD_TF2 = "IHE PCD Technical Framework Vol. 2, PCD-01 OBX-3/OBX-6 (MDC coding)"
MINDRAY_PCD = (
    "Mindray PCD-01 messages: VS8 capture (IHE PCD-01, v2.6) and XH80X 'hl7_demo_data.doc' "
    "golden message, quoted in public GitHub gateway projects"
)
COMEN_NC5 = "Comen NC5/NC-series PCD-01 captures (99COMEN), quoted in public GitHub gateways"
GE_VSP = (
    "GE Healthcare VSP gateway (B40/B1x5) PCD-01 DEC messages, quoted in public GitHub projects"
)
PHILIPS_IIC = (
    "Philips IntelliVue Information Center HL7 export samples (MDIL codes), quoted in public "
    "HAPI-based listeners on GitHub; Philips Data Export Interface Programming Guide (NOM_ codes)"
)
MINDRAY_PDS = (
    "Mindray PDS HL7 protocol (iPM/iMEC/T series, HL7 2.3.1) parameter codes, as tabulated in "
    "github.com/caowm/pds-server api/device/services/device-item.js"
)

Role = Literal["vital", "context"]


@dataclass(frozen=True, slots=True)
class CodeRow:
    """One observation identifier a monitor sends, and what vitalstream makes of it."""

    system: str
    """Canonical coding system: ``MDC``, ``MDIL``, ``99MNDRY``, ``MINDRAY_PDS`` or ``99COMEN``."""
    code: str
    label: str
    metric: str | None
    """Catalogue metric; ``None`` for a known code that is deliberately not a vital."""
    source: str
    implied_unit: str | None = None
    """UCUM unit to assume when OBX-6 is empty. Only set where the quantity admits a single
    unit (beats per minute, percent); pressures and temperatures are user-configurable on the
    monitors (mmHg/kPa, Cel/degF), so an empty OBX-6 there is rejected rather than guessed."""
    role: Role = "vital"
    aliases: tuple[str, ...] = ()
    """Other labels seen with this code (e.g. MDC_BLD_PERF_INDEX for 150488)."""


def _mdc(code: int, label: str, metric: str, source: str, unit: str | None = None) -> CodeRow:
    return CodeRow("MDC", str(code), label, metric, source, implied_unit=unit)


#: MDC codes for catalogue quantities beyond the catalogue's own code. IEEE 11073-10101 has
#: several terms for what vitalstream treats as one metric (cuff vs. non-invasive pressure,
#: generic vs. body temperature); monitors pick different ones.
MDC_ALIASES: tuple[CodeRow, ...] = (
    # Mindray XH80X/VS8 and Comen NC5 send the cuff pressure terms for NIBP.
    _mdc(150301, "MDC_PRESS_CUFF_SYS", "bp_systolic", MINDRAY_PCD),
    _mdc(150302, "MDC_PRESS_CUFF_DIA", "bp_diastolic", MINDRAY_PCD),
    _mdc(150303, "MDC_PRESS_CUFF_MEAN", "bp_mean", MINDRAY_PCD),
    # MDC_TEMP: generic temperature channel (T1/T2 of a multi-parameter monitor).
    _mdc(150344, "MDC_TEMP", "body_temperature", MINDRAY_PCD),
    # Pulse rate from a non-oximeter source. GE (VSP gateway) labels 149522 as the arterial-line
    # pulse MDC_BLD_PULS_RATE_INV; Comen NC5 sends the same code labelled MDC_PULS_RATE.
    _mdc(149514, "MDC_PULS_RATE", "pulse_rate", IEEE_10101, "/min"),
    CodeRow(
        "MDC",
        "149522",
        "MDC_BLD_PULS_RATE_INV",
        "pulse_rate",
        f"{GE_VSP}; {COMEN_NC5}",
        implied_unit="/min",
        aliases=("MDC_PULS_RATE",),
    ),
    # Impedance (trans-thoracic) respiration rate: Mindray eGateway, Mindray DPM.
    _mdc(151578, "MDC_TTHOR_RESP_RATE", "respiratory_rate", MINDRAY_PCD, "/min"),
)

#: Labels of the catalogue's own codes as monitors spell them (catalogue name first).
MDC_LABEL_ALIASES: dict[int, tuple[str, ...]] = {
    150488: ("MDC_BLD_PERF_INDEX",),  # Mindray VS8 / eGateway
    151708: ("MDC_CONC_AWAY_CO2_ET",),  # Mindray DPM parameter table
}

#: Catalogue metrics whose unit is unambiguous, so an MDC row may imply it when OBX-6 is empty.
MDC_IMPLIED_UNITS: dict[str, str] = {
    "heart_rate": "/min",
    "pulse_rate": "/min",
    "respiratory_rate": "/min",
    "spo2": "%",
    "perfusion_index": "%",
}


def _mdil(code: str, label: str, metric: str | None, unit: str | None = None) -> CodeRow:
    return CodeRow("MDIL", code, label, metric, PHILIPS_IIC, implied_unit=unit)


#: Philips IntelliVue MDIL codes (partition-termcode in hex) seen in Information Center exports.
#: NOM_ names per the Philips Data Export Interface Programming Guide.
MDIL_CODES: tuple[CodeRow, ...] = (
    _mdil("0002-4182", "HR", "heart_rate", "/min"),  # NOM_ECG_CARD_BEAT_RATE
    _mdil("0002-4bb8", "SpO2", "spo2", "%"),  # NOM_PULS_OXIM_SAT_O2
    _mdil("0002-480a", "Pulse", "pulse_rate", "/min"),  # NOM_PULS_RATE
    _mdil("0002-5000", "Resp", "respiratory_rate", "/min"),  # NOM_RESP
    _mdil("0002-500a", "RR", "respiratory_rate", "/min"),  # NOM_RESP_RATE
    _mdil("0002-4a05", "NBPs", "bp_systolic"),  # NOM_PRESS_BLD_NONINV_SYS
    _mdil("0002-4a06", "NBPd", "bp_diastolic"),  # NOM_PRESS_BLD_NONINV_DIA
    _mdil("0002-4a07", "NBPm", "bp_mean"),  # NOM_PRESS_BLD_NONINV_MEAN
    _mdil("0002-4b48", "Temp", "body_temperature"),  # NOM_TEMP
    _mdil("0002-4b60", "Tcore", "body_temperature"),  # NOM_TEMP_CORE
)


def _pds(code: str, label: str, metric: str, unit: str | None = None) -> CodeRow:
    return CodeRow("MINDRAY_PDS", code, label, metric, MINDRAY_PDS, implied_unit=unit)


#: Mindray PDS legacy protocol: OBX-3 ``<code>^<label>`` without a coding system.
MINDRAY_PDS_CODES: tuple[CodeRow, ...] = (
    _pds("101", "HR", "heart_rate", "/min"),
    _pds("151", "RR", "respiratory_rate", "/min"),
    _pds("160", "SpO2", "spo2", "%"),
    _pds("161", "PR", "pulse_rate", "/min"),
    _pds("170", "Sys", "bp_systolic"),  # NIBP; unit configurable (mmHg/kPa) -> needs OBX-6
    _pds("171", "Dia", "bp_diastolic"),
    _pds("172", "Mean", "bp_mean"),
    _pds("200", "T1", "body_temperature"),  # unit configurable (Cel/degF) -> needs OBX-6
)


def _comen(code: str, label: str) -> CodeRow:
    return CodeRow("99COMEN", code, label, None, COMEN_NC5, role="context")


#: Comen local codes: spot-check context, not measurements (vitals come as MDC rows).
COMEN_CODES: tuple[CodeRow, ...] = (
    _comen("2010", "COMEN_AGE"),
    _comen("2267", "COMEN_ACVPU"),
    _comen("2269", "COMEN_TEMP_POS"),
    _comen("2270", "COMEN_NIBP_POS"),
    _comen("2271", "COMEN_O2_SRC"),
    _comen("2275", "COMEN_HANDLER"),
    _comen("2279", "COMEN_PAIN_LEVEL"),
)

#: OBX-3.3 coding-system spellings -> canonical system. An empty system means "local, unnamed".
CODING_SYSTEMS: dict[str, str] = {
    "MDC": "MDC",
    "MDIL": "MDIL",
    "99MNDRY": "99MNDRY",
    "99COMEN": "99COMEN",
}

#: OBX-3.3 coding systems whose rows are alarms/alerts, not measurements.
ALARM_CODING_SYSTEMS: dict[str, str] = {
    # Philips IntelliVue Information Center: INOPs and alarms, OBX-5 = alarm text.
    "MDIL-ALERT": PHILIPS_IIC,
}

#: IEEE 11073-10101 partition 3 (EVT, events and alerts): codes 3<<16 .. 4<<16-1 are alarm
#: conditions (IHE PCD TF-2, PCD-04 MDC_EVT_ codes), never numeric vitals.
MDC_EVENT_PARTITION = 3

_LOCAL_ROWS: tuple[CodeRow, ...] = MINDRAY_PDS_CODES
_BY_SYSTEM_CODE: dict[tuple[str, str], CodeRow] = {
    (row.system, row.code): row for row in (*MDC_ALIASES, *MDIL_CODES, *COMEN_CODES)
}
_LOCAL_BY_CODE_LABEL: dict[tuple[str, str], CodeRow] = {
    (row.code, row.label.casefold()): row for row in _LOCAL_ROWS
}


def mdc_row(code: int) -> CodeRow | None:
    """The row for an IEEE 11073 code: the catalogue's own code first, then the aliases."""
    spec = by_mdc_code(code)
    if spec is not None:
        labels = (spec.mdc_reference or "", *MDC_LABEL_ALIASES.get(code, ()))
        return CodeRow(
            "MDC",
            str(code),
            labels[0],
            spec.name,
            IEEE_10101,
            implied_unit=MDC_IMPLIED_UNITS.get(spec.name),
            aliases=labels[1:],
        )
    return _BY_SYSTEM_CODE.get(("MDC", str(code)))


_MDC_BY_LABEL: dict[str, CodeRow] = {}


def _index_mdc_labels() -> None:
    for spec in CATALOGUE.values():
        if spec.mdc_code is not None:
            row = mdc_row(spec.mdc_code)
            if row is not None:
                for label in (row.label, *row.aliases):
                    _MDC_BY_LABEL[label] = row
    for row in MDC_ALIASES:
        for label in (row.label, *row.aliases):
            _MDC_BY_LABEL.setdefault(label, row)


_index_mdc_labels()


def mdc_row_by_label(label: str) -> CodeRow | None:
    """The row whose MDC reference name is ``label`` (e.g. ``MDC_PULS_OXIM_SAT_O2``)."""
    return _MDC_BY_LABEL.get(label)


def mdil_to_mdc(code: str) -> int | None:
    """``0002-4bb8`` -> 150456: MDIL codes are the 11073 partition and term code in hex."""
    partition, _, term = code.partition("-")
    if len(partition) != 4 or len(term) != 4:
        return None
    try:
        return int(partition, 16) << 16 | int(term, 16)
    except ValueError:
        return None


def is_code_number(code: str) -> bool:
    """An 11073 code as sent in OBX-3.1: ASCII digits, at most 10 of them (32-bit)."""
    return 0 < len(code) <= 10 and code.isascii() and code.isdigit()


def lookup(system: str, code: str, label: str) -> CodeRow | None:
    """The table row for an OBX-3 (identifier, text, coding system), or ``None`` if unknown.

    ``system`` is the canonical system from :data:`CODING_SYSTEMS`, or ``""`` when OBX-3.3 was
    empty (then only local rows whose code *and* label match are accepted).
    """
    if system == "MDC":
        if is_code_number(code):
            return mdc_row(int(code))
        return mdc_row_by_label(label) if not code else None
    if system == "MDIL":
        row = _BY_SYSTEM_CODE.get(("MDIL", code.casefold()))
        if row is not None:
            return row
        mdc = mdil_to_mdc(code)
        return mdc_row(mdc) if mdc is not None else None
    if system:
        return _BY_SYSTEM_CODE.get((system, code))
    return _LOCAL_BY_CODE_LABEL.get((code, label.casefold()))


# -- units --------------------------------------------------------------------------------------

#: OBX-6 tokens (identifier or text component) -> UCUM. MDC_DIM_ numeric codes are partition 4
#: (IEEE 11073-10101 dimensions) and were checked against PCD-01 messages from Mindray and Comen;
#: MDIL codes against Philips Information Center samples.
UNIT_ALIASES: dict[str, str] = {
    # percent
    "%": "%", "262688": "%", "MDC_DIM_PERCENT": "%", "0004-0220": "%",
    # per minute (beats, breaths)
    "/min": "/min", "1/min": "/min", "{beats}/min": "/min", "{breaths}/min": "/min",
    "bpm": "/min", "rpm": "/min", "brpm": "/min", "264864": "/min",
    "MDC_DIM_BEAT_PER_MIN": "/min", "264928": "/min", "MDC_DIM_RESP_PER_MIN": "/min",
    "0004-0aa0": "/min", "0004-0ae0": "/min",
    # pressure
    "mm[Hg]": "mm[Hg]", "mmHg": "mm[Hg]", "mmhg": "mm[Hg]", "266016": "mm[Hg]",
    "MDC_DIM_MMHG": "mm[Hg]", "0004-0f20": "mm[Hg]",
    "kPa": "kPa", "kpa": "kPa", "MDC_DIM_KILO_PASCAL": "kPa", "0004-0f03": "kPa",
    # temperature
    "Cel": "Cel", "°C": "Cel", "degC": "Cel", "C": "Cel", "268192": "Cel",
    "MDC_DIM_DEGC": "Cel", "0004-17a0": "Cel",
    "[degF]": "[degF]", "°F": "[degF]", "degF": "[degF]", "F": "[degF]", "268160": "[degF]",
    "MDC_DIM_FAHR": "[degF]", "0004-1780": "[degF]",
    # glucose
    "mmol/L": "mmol/L", "mmol/l": "mmol/L", "MDC_DIM_MILLI_MOLE_PER_L": "mmol/L",
    "mg/dL": "mg/dL", "mg/dl": "mg/dL", "MDC_DIM_MILLI_G_PER_DL": "mg/dL",
    # body measurements
    "kg": "kg", "263875": "kg", "MDC_DIM_KILO_G": "kg",
    "g": "g", "MDC_DIM_X_G": "g",
    "[lb_av]": "[lb_av]", "lb": "[lb_av]", "lbs": "[lb_av]", "MDC_DIM_LB": "[lb_av]",
    "m": "m", "MDC_DIM_X_M": "m",
    "cm": "cm", "263441": "cm", "MDC_DIM_CENTI_M": "cm",
    "[in_i]": "[in_i]", "in": "[in_i]", "MDC_DIM_INCH": "[in_i]",
    "ms": "ms", "MDC_DIM_MILLI_SEC": "ms",
    "kg/m2": "kg/m2", "MDC_DIM_KG_PER_M_SQ": "kg/m2",
}  # fmt: skip

Conversion = Callable[[float], float]

#: Glucose molar mass 180.16 g/mol: 1 mmol/L = 18.016 mg/dL.
GLUCOSE_MG_PER_DL_PER_MMOL_PER_L = 18.016
#: 1 kPa = 7.500 616 827 mmHg (101.325 kPa = 760 mmHg).
MMHG_PER_KPA = 760.0 / 101.325

#: (from UCUM, to UCUM, metric or "*") -> conversion. Converted once, here; never downstream.
CONVERSIONS: dict[tuple[str, str, str], Conversion] = {
    ("kPa", "mm[Hg]", "*"): lambda kpa: kpa * MMHG_PER_KPA,
    ("[degF]", "Cel", "*"): lambda fahrenheit: (fahrenheit - 32.0) * 5.0 / 9.0,
    ("mg/dL", "mmol/L", "glucose"): lambda mg_dl: mg_dl / GLUCOSE_MG_PER_DL_PER_MMOL_PER_L,
    ("g", "kg", "*"): lambda grams: grams / 1000.0,
    ("[lb_av]", "kg", "*"): lambda pounds: pounds * 0.45359237,
    ("cm", "m", "*"): lambda centimetres: centimetres / 100.0,
    ("[in_i]", "m", "*"): lambda inches: inches * 0.0254,
}


def unit_of(identifier: str, text: str) -> str | None:
    """UCUM unit for an OBX-6 (identifier, text), trying the identifier first."""
    for token in (identifier, text):
        if token and token in UNIT_ALIASES:
            return UNIT_ALIASES[token]
    return None


def conversion(from_unit: str, to_unit: str, metric: str) -> Conversion | None:
    """How to bring ``from_unit`` to the metric's canonical ``to_unit`` (None: not convertible)."""
    return CONVERSIONS.get((from_unit, to_unit, metric)) or CONVERSIONS.get(
        (from_unit, to_unit, "*")
    )


# -- "no value" sentinels -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sentinel:
    """A value a monitor sends to mean "no measurement", compared on the value as sent."""

    value: float
    metric: str | None
    """Only for this metric (``None``: any metric)."""
    source: str


SENTINELS: tuple[Sentinel, ...] = (
    # Mindray XH80X golden message: SpO2, HR and NIBP -999 when the parameter is off.
    Sentinel(-999.0, None, MINDRAY_PCD),
    # Same message: temperature -99.9 when no probe.
    Sentinel(-99.9, None, MINDRAY_PCD),
    # Mindray PDS / clones: -100 for an invalid parameter (seen for SpO2 and PR).
    Sentinel(-100.0, None, MINDRAY_PDS),
    # 0x7FFFFF: the IEEE 11073-20601 FLOAT NaN mantissa leaking as an integer (Comen NC5 sends
    # it with OBX-11 = X); 0x800000 = NRes, 0x7FFFFE = +INF, 0x800002 = -INF likewise.
    Sentinel(8388607.0, None, COMEN_NC5),
    Sentinel(8388608.0, None, IEEE_10101),
    Sentinel(8388606.0, None, IEEE_10101),
    Sentinel(8388610.0, None, IEEE_10101),
    # Comen NC5 sends height and weight 0 when not entered; 0 kg / 0 cm is never a measurement.
    Sentinel(0.0, "weight", COMEN_NC5),
    Sentinel(0.0, "height", COMEN_NC5),
)


def is_sentinel(value: float, metric: str) -> bool:
    """True when ``value`` (as sent, before unit conversion) means "not measured"."""
    return any(
        value == sentinel.value and sentinel.metric in (None, metric) for sentinel in SENTINELS
    )


#: OBX-13 (user-defined access checks) values that mark a row as a setting or configuration,
#: not a measurement (Philips IntelliVue Information Center export: SETTING, CONFIGURATION).
NON_MEASUREMENT_ACCESS_CHECKS: dict[str, str] = {
    "SETTING": "setting",
    "CONFIGURATION": "configuration",
}

#: OBX-11 result status (HL7 table 0085) handling.
#: X = "results cannot be obtained" -> a Measurement with no_value; D/W -> ignored.
RESULT_STATUS_NOT_MEASURED = frozenset({"X"})
RESULT_STATUS_IGNORED: dict[str, str] = {
    "D": "result_deleted",
    "W": "result_wrong",
}

#: OBX-8 abnormal flags that mean the value is not from a patient (Mindray VS8: DEMO mode).
ABNORMAL_FLAGS_IGNORED: dict[str, str] = {"DEMO": "demo_mode"}
