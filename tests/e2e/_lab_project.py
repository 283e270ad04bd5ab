"""A throw-away project for e2e tests: no Worker entrypoint, so the default router serves it.

``/LAB/<name>/<action>`` reaches object ``<name>``: ``put`` (body stored),
``status`` (JSON: code version, stored value, which version's ``alarm()``
fired), ``alarm?ms=N`` (set an alarm N ms ahead), ``boom`` (raises), anything
else answers ``v<VERSION>``. ``write_lab`` writes it with a given ``VERSION``
so a test can change the code under a running ``dohost dev``.
"""

from __future__ import annotations

import os
from pathlib import Path

WRANGLER = """\
name = "lab"
main = "src/worker.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

[[durable_objects.bindings]]
name = "LAB"
class_name = "Lab"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Lab"]
"""

WORKER = '''\
import time
from urllib.parse import parse_qs, urlsplit

from workers import DurableObject, Response

VERSION = {version}


class Lab(DurableObject):
    async def fetch(self, request):
        parts = urlsplit(request.url)
        action = parts.path.split("/", 3)[3] if parts.path.count("/") >= 3 else ""
        kv = self.ctx.storage.kv
        if action == "boom":
            raise RuntimeError("boom from the lab")
        if action == "put":
            kv.put("value", await request.text())
            return Response("stored")
        if action == "alarm":
            ms = int(parse_qs(parts.query)["ms"][0])
            await self.ctx.storage.setAlarm(time.time() * 1000 + ms)
            return Response("alarm set")
        if action == "status":
            return Response.json({{"version": VERSION, "value": kv.get("value"), "fired": kv.get("fired")}})
        return Response(f"v{{VERSION}}")

    async def alarm(self, alarm_info=None):
        self.ctx.storage.kv.put("fired", VERSION)
'''


def write_lab(root: Path, version: int = 1, *, source: str | None = None) -> Path:
    """Write (or rewrite) the lab project; returns the wrangler file."""
    (root / "src").mkdir(parents=True, exist_ok=True)
    config = root / "wrangler.toml"
    if not config.exists():
        config.write_text(WRANGLER)
    worker = root / "src" / "worker.py"
    existed = worker.exists()
    worker.write_text(source if source is not None else WORKER.format(version=version))
    if existed:  # a rewrite within one mtime tick must still look changed
        st = worker.stat()
        os.utime(worker, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    return config
