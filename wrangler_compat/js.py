"""``wrangler_compat.js``: kept importable; the module is :mod:`wrangler_compat.platform.js`."""

import sys

from .platform import js as _js

sys.modules[__name__] = _js
