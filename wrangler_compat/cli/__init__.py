"""The ``dohost`` command line: ``dev``, ``serve``, ``deploy``, ``rollback``, ``d1``, ``do``, and the HTTP front.

One module per command (``_dev``, ``_serve``, ``_deploy``, ``_do``), the HTTP
front they share (``_front``, ``_hosting``, ``_workers``, ``_scheduled_route``),
the supervisor of ``serve --processes`` (``_processes``) and log output
(``_logging``). ``python -m wrangler_compat.cli`` runs the command.
"""

from __future__ import annotations

from ._main import build_parser as build_parser
from ._main import main as main

__all__ = ["build_parser", "main"]
