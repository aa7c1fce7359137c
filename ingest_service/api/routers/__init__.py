"""One router per resource (FastAPI full-stack template layout)."""
