"""``python -m wrangler_compat.cli``: the ``dohost`` command."""

import sys

from ._main import main

sys.exit(main())
