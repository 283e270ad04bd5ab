"""``.dev.vars`` for ``dohost dev``: local secrets, as ``wrangler dev`` reads them.

The file sits beside the wrangler file, in dotenv format (parsed by
python-dotenv). With ``--env <name>``, ``.dev.vars.<name>`` is used instead
when it exists. Its values are strings and override ``vars`` of the same
name. Only ``dohost dev`` reads it: a deployed Worker's secrets come from
``dohost serve``'s own configuration, as on Cloudflare.
"""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values

__all__ = ["dev_vars_path", "load_dev_vars"]


def dev_vars_path(base_dir: Path, env: str | None) -> Path | None:
    """The file ``wrangler dev`` would read for ``env``, or None."""
    # CF: https://developers.cloudflare.com/workers/configuration/secrets/#local-development-with-secrets
    if env is not None and (base_dir / f".dev.vars.{env}").is_file():
        return base_dir / f".dev.vars.{env}"
    path = base_dir / ".dev.vars"
    return path if path.is_file() else None


def load_dev_vars(base_dir: Path, env: str | None = None) -> dict[str, str]:
    path = dev_vars_path(base_dir, env)
    if path is None:
        return {}
    return {k: v if v is not None else "" for k, v in dotenv_values(path).items()}
