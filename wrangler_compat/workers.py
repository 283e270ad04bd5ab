"""``wrangler_compat.workers``: kept importable; the module is :mod:`wrangler_compat.platform.workers`."""

import sys

from .platform import workers as _workers

sys.modules[__name__] = _workers
