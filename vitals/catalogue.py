"""The metric catalogue: one row per metric, the single place units and codes are defined.

Each entry names the canonical UCUM unit (conversions happen once, in a decoder, never later),
the IEEE 11073-10101 nomenclature code (MDC, full 32-bit form partition<<16 | term code, as
carried in IEEE 11073-20601 and in HL7 OBX-3 by IHE PCD-01), the LOINC code used in FHIR
Observations, and the plausible range. A value outside the plausible range is a device or
transcription fault, not physiology: ingest dead-letters it with the reason ``implausible``.

Codes are left ``None`` where no single standard code fits (e.g. "on supplemental oxygen" is a
NEWS2 input with no MDC numeric); a ``None`` is a deliberate gap, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitals.errors import UnknownMetricError


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a metric is: canonical unit, codes, and the plausible range of its values."""

    name: str
    unit: str
    description: str
    plausible_min: float
    plausible_max: float
    mdc_code: int | None = None
    mdc_reference: str | None = None
    loinc: str | None = None
    waveform: bool = False

    def is_plausible(self, value: float) -> bool:
        """True when ``value`` lies in the closed plausible range."""
        return self.plausible_min <= value <= self.plausible_max


def _spec(
    name: str,
    unit: str,
    description: str,
    plausible: tuple[float, float],
    mdc: tuple[int, str] | None,
    loinc: str | None,
) -> MetricSpec:
    return MetricSpec(
        name=name,
        unit=unit,
        description=description,
        plausible_min=plausible[0],
        plausible_max=plausible[1],
        mdc_code=mdc[0] if mdc else None,
        mdc_reference=mdc[1] if mdc else None,
        loinc=loinc,
    )


# IEEE 11073-10101 codes below are partition 2 (SCADA): 2 * 65536 + term code.
_ENTRIES: tuple[MetricSpec, ...] = (
    _spec(
        "heart_rate",
        "/min",
        "Heart rate (ECG or HR strap)",
        (15, 300),
        (147842, "MDC_ECG_HEART_RATE"),
        "8867-4",
    ),
    _spec(
        "pulse_rate",
        "/min",
        "Pulse rate (oximeter or cuff)",
        (15, 300),
        (149530, "MDC_PULS_OXIM_PULS_RATE"),
        "8889-8",
    ),
    _spec(
        "rr_interval",
        "ms",
        "Beat-to-beat (RR) interval",
        (150, 3000),
        (147240, "MDC_ECG_TIME_PD_RR_GL"),
        None,
    ),
    _spec(
        "energy_expended",
        "kJ",
        "Energy expended since reset (HR strap)",
        (0, 65535 * 4.184),
        None,
        None,
    ),
    _spec(
        "bp_systolic",
        "mm[Hg]",
        "Systolic blood pressure (non-invasive)",
        (40, 300),
        (150021, "MDC_PRESS_BLD_NONINV_SYS"),
        "8480-6",
    ),
    _spec(
        "bp_diastolic",
        "mm[Hg]",
        "Diastolic blood pressure (non-invasive)",
        (15, 200),
        (150022, "MDC_PRESS_BLD_NONINV_DIA"),
        "8462-4",
    ),
    _spec(
        "bp_mean",
        "mm[Hg]",
        "Mean arterial pressure (non-invasive)",
        (20, 250),
        (150023, "MDC_PRESS_BLD_NONINV_MEAN"),
        "8478-0",
    ),
    _spec(
        "body_temperature", "Cel", "Body temperature", (25, 45), (150364, "MDC_TEMP_BODY"), "8310-5"
    ),
    _spec(
        "glucose",
        "mmol/L",
        "Blood glucose (capillary whole blood or CGM)",
        (0.5, 50),
        (160184, "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD"),
        "15074-8",
    ),
    _spec(
        "spo2",
        "%",
        "Peripheral oxygen saturation (pulse oximetry)",
        (40, 100),
        (150456, "MDC_PULS_OXIM_SAT_O2"),
        "59408-5",
    ),
    _spec(
        "perfusion_index",
        "%",
        "Perfusion index (pulse oximetry)",
        (0, 30),
        (150488, "MDC_PULS_OXIM_PERF_REL"),
        None,
    ),
    _spec(
        "respiratory_rate", "/min", "Respiratory rate", (0, 80), (151562, "MDC_RESP_RATE"), "9279-1"
    ),
    _spec("weight", "kg", "Body weight", (0.3, 400), (188736, "MDC_MASS_BODY_ACTUAL"), "29463-7"),
    _spec("height", "m", "Body height", (0.2, 2.6), (188740, "MDC_LEN_BODY_ACTUAL"), "8302-2"),
    _spec(
        "bmi",
        "kg/m2",
        "Body mass index",
        (5, 120),
        (188752, "MDC_RATIO_MASS_BODY_LEN_SQ"),
        "39156-5",
    ),
    _spec(
        "etco2",
        "mm[Hg]",
        "End-tidal carbon dioxide",
        (0, 150),
        (151708, "MDC_AWAY_CO2_ET"),
        "19889-5",
    ),
    _spec("fio2", "%", "Fraction of inspired oxygen", (21, 100), None, "3150-0"),
    _spec(
        "supplemental_o2", "{bool}", "On supplemental oxygen (1 = yes, 0 = air)", (0, 1), None, None
    ),
    _spec("gcs", "{score}", "Glasgow Coma Scale total", (3, 15), None, "9269-2"),
)

# ECG waveform channels (issue: waveform lane). Samples in millivolts.
_ECG_LEADS = ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6")
_WAVEFORMS = tuple(
    MetricSpec(
        name=f"ecg_{lead}",
        unit="mV",
        description=f"ECG lead {lead.upper()} sample",
        plausible_min=-20.0,
        plausible_max=20.0,
        waveform=True,
    )
    for lead in _ECG_LEADS
)

CATALOGUE: dict[str, MetricSpec] = {spec.name: spec for spec in (*_ENTRIES, *_WAVEFORMS)}


def metric(name: str) -> MetricSpec:
    """Look a metric up by its catalogue name, or raise ``UnknownMetricError``."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownMetricError(
            f"metric {name!r} is not in the catalogue; known metrics: "
            + ", ".join(sorted(n for n in CATALOGUE if not n.startswith("ecg_")))
            + ", ecg_<lead>"
        ) from None


def by_mdc_code(code: int) -> MetricSpec | None:
    """The catalogue entry carrying this IEEE 11073 code, if any."""
    return _BY_MDC.get(code)


_BY_MDC: dict[int, MetricSpec] = {
    spec.mdc_code: spec for spec in CATALOGUE.values() if spec.mdc_code is not None
}
