"""Tenant namespaces inside a shard's SQL: each tenant's tables are its own.

Many tenants share one ``TableShard`` (four shards for every tenant). The
original WorkerSQL kept every tenant's rows in shared tables and only
*warned* when a query named no tenant, so any tenant could read any other's
rows. Here each tenant's tables, indexes and views live under a prefix
derived from a hash of the tenant id (``t<12 hex>_``): the statement's table
names are rewritten before it runs, so a tenant cannot even name another's
tables — ``sqlite_schema``, ``_cf_KV`` or a neighbour's ``orders`` become
tables that do not exist.

The rewriting works on tokens (strings, quoted identifiers and comments are
never touched): the name after ``FROM``, ``JOIN``, ``INTO``, ``UPDATE``,
``TABLE``, ``VIEW``, ``INDEX``, ``REFERENCES`` (and each name of a ``FROM a,
b`` list, and ``ON t`` of ``CREATE INDEX``), plus ``t.column`` qualifiers of
those tables. Triggers and ``ATTACH`` are refused.
"""

import hashlib
import re

__all__ = ["namespace", "rewrite", "strip", "first_table", "statement_kind", "SqlRefused"]

_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<c1>--[^\n]*)|(?P<c2>/\*.*?(?:\*/|$))|(?P<str>'(?:[^']|'')*')"""
    r"""|(?P<qid>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)"""
    r"""|(?P<num>\d+(?:\.\d*)?)|(?P<punct>.)""",
    re.S,
)
_NAME_AFTER = {"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "VIEW", "INDEX", "REFERENCES"}
_SKIP = {"IF", "NOT", "EXISTS", "ONLY", "TEMP", "TEMPORARY"}
_REFUSED = {"TRIGGER", "ATTACH", "DETACH"}


class SqlRefused(ValueError):
    """The statement uses something a tenant may not (a trigger, ATTACH)."""


def namespace(tenant):
    return "t" + hashlib.sha256(tenant.encode()).hexdigest()[:12] + "_"


def _tokens(sql):
    return [(m.lastgroup, m.group()) for m in _TOKEN.finditer(sql)]


def _unquote(kind, text):
    if kind == "qid":
        return text[1:-1]
    return text


def rewrite(sql, prefix):
    """``sql`` with every table name of the statement moved under ``prefix``."""
    toks = _tokens(sql)
    out = []
    tables = set()
    expect = False  # the next name is a table name
    in_list = False  # inside FROM a, b, ...
    create_index = False
    prev_words = []
    for i, (kind, text) in enumerate(toks):
        if kind in ("ws", "c1", "c2"):
            out.append(text)
            continue
        upper = text.upper() if kind == "word" else ""
        if upper in _REFUSED:
            raise SqlRefused(f"{upper} is not available to tenants")
        if kind in ("word", "qid") and expect and upper not in _SKIP:
            name = _unquote(kind, text)
            if name.upper() not in ("SELECT", "VALUES", "("):
                tables.add(name.lower())
                out.append('"' + (prefix + name).replace('"', '""') + '"')
                expect = False
                prev_words.append("<name>")
                continue
        if kind == "word":
            if upper in _NAME_AFTER:
                expect = True
                in_list = upper == "FROM"
                if upper == "INDEX" and prev_words[-1:] in (["CREATE"], ["UNIQUE"]):
                    create_index = True
            elif upper == "ON" and create_index:
                expect = True
                create_index = False
            elif upper not in _SKIP:
                expect = False
                if upper in ("WHERE", "GROUP", "ORDER", "LIMIT", "SET", "ON", "USING", "AS"):
                    in_list = False
            prev_words.append(upper)
        elif kind == "punct":
            if text == "," and in_list:
                expect = True
            elif text == "(":
                expect = False
            elif text == ")":
                in_list = False
        out.append(text)
    # Second pass: qualifiers ``t.col`` naming a rewritten table.
    result = []
    joined = _tokens("".join(out))
    for i, (kind, text) in enumerate(joined):
        nxt = joined[i + 1][1] if i + 1 < len(joined) else ""
        if kind in ("word", "qid") and nxt == "." and _unquote(kind, text).lower() in tables:
            result.append('"' + (prefix + _unquote(kind, text)).replace('"', '""') + '"')
        else:
            result.append(text)
    return "".join(result)


def strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else None


def first_table(sql):
    """The first table a statement names (for table-level sharding), or None."""
    expect = False
    for kind, text in _tokens(sql):
        if kind in ("ws", "c1", "c2"):
            continue
        upper = text.upper() if kind == "word" else ""
        if expect and kind in ("word", "qid") and upper not in _SKIP:
            return _unquote(kind, text).lower()
        expect = upper in _NAME_AFTER
    return None


def statement_kind(sql):
    """SELECT / INSERT / UPDATE / DELETE / DDL / OTHER, by the first keyword."""
    for kind, text in _tokens(sql):
        if kind in ("ws", "c1", "c2"):
            continue
        upper = text.upper()
        if upper in ("SELECT", "WITH", "VALUES"):
            return "SELECT"
        if upper in ("INSERT", "REPLACE"):
            return "INSERT"
        if upper in ("UPDATE", "DELETE"):
            return upper
        if upper in ("CREATE", "ALTER", "DROP"):
            return "DDL"
        return "OTHER"
    return "EMPTY"
