"""Bounded fuzzing for CI: HEALTHSPACE_FUZZ_EXAMPLES examples per operation (default 12).
A longer campaign: HEALTHSPACE_FUZZ_EXAMPLES=1000 .venv/bin/pytest tests/fuzz -p no:cacheprovider"""

from __future__ import annotations

import os

EXAMPLES = int(os.environ.get("HEALTHSPACE_FUZZ_EXAMPLES", "12"))
