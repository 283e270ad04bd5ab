"""A tiny markdown table printer shared by the ``bench_*.py`` files.

Every benchmark prints its results as a GitHub-flavoured markdown table, so the
README can paste the output as is::

    from _table import print_table
    print_table("RPC", ["measure", "µs"], [["sync method", 12.3]])

Numbers are formatted with :func:`fmt` (3 significant digits, thousands
separated); strings pass through. Columns after the first are right-aligned.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["fmt", "markdown_table", "print_table"]


def fmt(value: Any) -> str:
    """A cell: floats to 3 significant digits (ints grouped), ``None`` as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "–"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "| " + " | ".join(parts) + " |"

    rule = "| " + " | ".join(["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]) + " |"
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def print_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if title:
        print(f"\n### {title}\n")
    print(markdown_table(headers, rows), flush=True)
