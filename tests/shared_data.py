"""Where the shared PhysioNet recordings are (../shared/data beside the repository).

CI clones the repository into another folder with a copy of shared/ beside it, so the path is
found relative to this checkout first; ``VITALSTREAM_SHARED_DIR`` overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The shared/ folder: $VITALSTREAM_SHARED_DIR, else ../shared, else /work/shared."""
    named = os.environ.get("VITALSTREAM_SHARED_DIR")
    candidates = [Path(named)] if named else []
    candidates += [_REPO.parent / "shared", Path("/work/shared")]
    for candidate in candidates:
        if (candidate / "data").is_dir():
            return candidate
    raise FileNotFoundError(
        "shared/data not found beside the repository; set VITALSTREAM_SHARED_DIR"
    )


DATA = shared_dir() / "data"
MITDB_DIR = DATA / "mitdb_af_and_nsr"
MIMIC_DIR = DATA / "mimic2wdb_numerics"
