"""Durable Object classes with no wrangler file: tests host them through ``dohost_bindings``."""

from workers import DurableObject


class Tally(DurableObject):
    def add(self, amount):
        total = (self.ctx.storage.kv.get("total") or 0) + amount
        self.ctx.storage.kv.put("total", total)
        return total
