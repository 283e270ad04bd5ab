"""``workers.workflows``: the SDK's Workflow exception, so Workflow code imports.

dohost runs no Workflows (see ``WorkflowEntrypoint``); a Worker that defines
one still loads, and ``NonRetryableError`` is the SDK's marker exception
(cloudflare/workers-py ``workers/workflows.py``).
"""

from __future__ import annotations

from .._unsupported import module_getattr

__all__ = ["NonRetryableError"]


class NonRetryableError(Exception):
    """Raised in a Workflow step to stop it from being retried."""


__getattr__ = module_getattr("workers.workflows")
