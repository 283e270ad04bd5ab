"""tests/compat: programs run through the plugin and through ``dohost dev``.

The subprocess helpers live in ``tests/e2e/_e2e_support.py``; put that folder
on ``sys.path`` once here instead of in every module that imports them.
"""

from __future__ import annotations

import sys
from pathlib import Path

_E2E = str(Path(__file__).resolve().parents[1] / "e2e")
if _E2E not in sys.path:
    sys.path.insert(0, _E2E)
