"""Writes the curated corpus: ``python tests/conformance/_make_corpus.py tests/conformance/cases``.

The JSON files it writes are the corpus the tests read; this script is how
they were made (edit it, re-run it, review the JSON diff). ``KNOWN`` marks the
steps whose difference ``_known.STEP_REASONS`` documents.
"""
import json, itertools, sys
from pathlib import Path
OUT = Path(sys.argv[1])
ALL = ["toArray", "columnNames", "rowsRead", "rowsWritten"]

def ex(sql, *args, steps=ALL):
    op = {"op": "exec", "sql": sql, "steps": list(steps)}
    if args: op["args"] = list(args)
    return op

KNOWN = {
    ("errors", "object_bindings"): {"0": "python-object-binding", "1": "python-object-binding"},
    ("sql_statements", "insert_or_rollback"): {"0": "internal-error-reference", "1": "internal-error-reference"},
    ("sql_statements", "reserved_names"): {"7": "reserved-dohost-prefix"},
    ("limits", "value_length"): {"2": "printf-precision", "3": "printf-precision"},
    ("sql_statements", "select_numeric_column_names"): {"0": "row-key-order"},
    ("pragmas", "values_read"): {"10": "data-version-base"},
}
def write(name, about, cases):
    for c in cases:
        if (name, c["id"]) in KNOWN:
            c["known"] = KNOWN[(name, c["id"])]
    ids = set()
    for c in cases:
        assert c["id"] not in ids, c["id"]; ids.add(c["id"])
    (OUT / f"{name}.json").write_text(json.dumps({"about": about, "cases": cases}, indent=1, ensure_ascii=False) + "\n")
    print(name, len(cases))

T = "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b REAL)"
SEED = [ex(T), ex("INSERT INTO t(a, b) VALUES ('x', 1.5), ('y', 2), ('z', NULL)")]

# ---------------------------------------------------------------- statements
stmts = {
 "create_table": [ex(T)],
 "create_table_without_rowid": [ex("CREATE TABLE w(k TEXT PRIMARY KEY, v) WITHOUT ROWID"), ex("INSERT INTO w VALUES ('a', 1), ('b', 2)"), ex("SELECT * FROM w")],
 "create_table_strict": [ex("CREATE TABLE s(i INTEGER, t TEXT) STRICT"), ex("INSERT INTO s VALUES (1, 'a')"), ex("INSERT INTO s VALUES ('x', 'a')")],
 "create_table_generated": [ex("CREATE TABLE g(a INT, b INT GENERATED ALWAYS AS (a * 2) STORED, c INT AS (a + 1))"), ex("INSERT INTO g(a) VALUES (3)"), ex("SELECT * FROM g")],
 "create_table_as_select": SEED + [ex("CREATE TABLE t2 AS SELECT a FROM t"), ex("SELECT * FROM t2")],
 "create_if_not_exists": [ex(T), ex("CREATE TABLE IF NOT EXISTS t(x)"), ex(T)],
 "create_index": SEED + [ex("CREATE INDEX ia ON t(a)"), ex("CREATE UNIQUE INDEX ib ON t(b)"), ex("INSERT INTO t(a, b) VALUES ('w', 9)"), ex("SELECT a FROM t WHERE a > 'x'")],
 "partial_index": SEED + [ex("CREATE INDEX ip ON t(a) WHERE b IS NOT NULL"), ex("SELECT count(*) FROM t WHERE b IS NOT NULL")],
 "create_view": SEED + [ex("CREATE VIEW v AS SELECT a, b * 2 AS bb FROM t"), ex("SELECT * FROM v"), ex("DROP VIEW v")],
 "create_trigger": SEED + [ex("CREATE TABLE log(msg)"), ex("CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.a); END"), ex("INSERT INTO t(a) VALUES ('q')"), ex("SELECT * FROM log"), ex("DROP TRIGGER tr")],
 "insert_values": [ex(T), ex("INSERT INTO t(a, b) VALUES (?, ?)", "a", 1), ex("INSERT INTO t(a, b) VALUES ('b', 2), ('c', 3), ('d', 4)"), ex("SELECT * FROM t")],
 "insert_select": SEED + [ex("INSERT INTO t(a, b) SELECT a || a, b FROM t"), ex("SELECT count(*) AS n FROM t")],
 "insert_default_values": [ex("CREATE TABLE d(x DEFAULT 7, y DEFAULT 'z')"), ex("INSERT INTO d DEFAULT VALUES"), ex("SELECT * FROM d")],
 "upsert": [ex("CREATE TABLE u(k TEXT PRIMARY KEY, n INT)"), ex("INSERT INTO u VALUES ('a', 1) ON CONFLICT(k) DO UPDATE SET n = n + 1"), ex("INSERT INTO u VALUES ('a', 1) ON CONFLICT(k) DO UPDATE SET n = n + 1"), ex("INSERT INTO u VALUES ('a', 1) ON CONFLICT DO NOTHING"), ex("SELECT * FROM u")],
 "replace": [ex("CREATE TABLE u(k TEXT PRIMARY KEY, n INT)"), ex("INSERT INTO u VALUES ('a', 1)"), ex("REPLACE INTO u VALUES ('a', 2)"), ex("INSERT OR REPLACE INTO u VALUES ('b', 3)"), ex("SELECT * FROM u")],
 "insert_or_ignore": [ex("CREATE TABLE u(k TEXT PRIMARY KEY)"), ex("INSERT INTO u VALUES ('a')"), ex("INSERT OR IGNORE INTO u VALUES ('a'), ('b')"), ex("SELECT * FROM u")],
 "insert_or_fail_abort": [ex("CREATE TABLE u(k TEXT PRIMARY KEY)"), ex("INSERT INTO u VALUES ('a')"), ex("INSERT OR FAIL INTO u VALUES ('b'), ('a'), ('c')"), ex("INSERT OR ABORT INTO u VALUES ('d'), ('a')"), ex("SELECT * FROM u")],
 "insert_or_rollback": [ex("INSERT OR ROLLBACK INTO nope VALUES (1)"), ex("SELECT 1 AS one")],
 "update": SEED + [ex("UPDATE t SET b = b * 10 WHERE b IS NOT NULL"), ex("UPDATE t SET a = 'none' WHERE id > 100"), ex("SELECT * FROM t")],
 "update_from": SEED + [ex("CREATE TABLE s(a TEXT, v INT)"), ex("INSERT INTO s VALUES ('x', 100)"), ex("UPDATE t SET b = s.v FROM s WHERE s.a = t.a"), ex("SELECT * FROM t")],
 "delete": SEED + [ex("DELETE FROM t WHERE a = 'x'"), ex("DELETE FROM t"), ex("SELECT * FROM t")],
 "returning": [ex(T), ex("INSERT INTO t(a) VALUES ('r'), ('s') RETURNING id, a"), ex("UPDATE t SET a = upper(a) RETURNING *"), ex("DELETE FROM t WHERE id = 1 RETURNING a")],
 "returning_steps": [ex(T), ex("INSERT INTO t(a) VALUES ('r'), ('s'), ('u') RETURNING a", steps=["next", "rowsRead", "rowsWritten", "toArray", "rowsRead"])],
 "select_expressions": [ex("SELECT 1 AS one, 1.5 AS f, 'x' AS s, NULL AS n, x'00ff' AS b, 2 + 3 * 4 AS e")],
 "select_join": SEED + [ex("CREATE TABLE s(a TEXT, v INT)"), ex("INSERT INTO s VALUES ('x', 1), ('x', 2), ('q', 3)"), ex("SELECT t.a, s.v FROM t JOIN s ON s.a = t.a ORDER BY s.v"), ex("SELECT t.a, s.v FROM t LEFT JOIN s USING (a) ORDER BY t.id, s.v"), ex("SELECT * FROM t, s WHERE t.a = s.a")],
 "select_group_by": SEED + [ex("SELECT a IS NULL AS k, count(*) AS n, sum(b) AS s FROM t GROUP BY 1 HAVING n > 0 ORDER BY 1")],
 "select_compound": [ex("SELECT 1 UNION SELECT 2 UNION ALL SELECT 2 EXCEPT SELECT 3 INTERSECT SELECT 1")],
 "select_cte": [ex("WITH x(n) AS (SELECT 1 UNION ALL SELECT 2) SELECT n FROM x")],
 "select_recursive_cte": [ex("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 50) SELECT sum(n) AS s, count(*) AS k FROM c")],
 "select_subquery": SEED + [ex("SELECT a FROM t WHERE b > (SELECT avg(b) FROM t)"), ex("SELECT (SELECT count(*) FROM t) AS c")],
 "select_values": [ex("VALUES (1, 'a'), (2, 'b')")],
 "select_order_limit": SEED + [ex("SELECT a FROM t ORDER BY a DESC LIMIT 2 OFFSET 1"), ex("SELECT a FROM t ORDER BY b NULLS LAST")],
 "select_distinct": SEED + [ex("SELECT DISTINCT b IS NULL AS z FROM t")],
 "select_duplicate_columns": [ex("SELECT 1 AS a, 2 AS a, 3 AS b", steps=["columnNames", "raw", "columnNames"]), ex("SELECT 1 AS a, 2 AS a", steps=["toArray"])],
 "select_numeric_column_names": [ex("SELECT 1 AS b, 2 AS \"1\", 3 AS a", steps=["toArray", "columnNames"])],
 "alter_table_rename": SEED + [ex("ALTER TABLE t RENAME TO t_new"), ex("SELECT count(*) AS n FROM t_new"), ex("ALTER TABLE t_new RENAME COLUMN a TO aa"), ex("SELECT aa FROM t_new")],
 "alter_table_add_drop_column": SEED + [ex("ALTER TABLE t ADD COLUMN c INT DEFAULT 5"), ex("SELECT * FROM t"), ex("ALTER TABLE t DROP COLUMN c"), ex("SELECT * FROM t")],
 "alter_table_rename_to_reserved": SEED + [ex("ALTER TABLE t RENAME TO _cf_x"), ex("ALTER TABLE t RENAME TO _CF_x")],
 "drop_table": SEED + [ex("DROP TABLE t"), ex("DROP TABLE t"), ex("DROP TABLE IF EXISTS t")],
 "drop_index": SEED + [ex("CREATE INDEX ia ON t(a)"), ex("DROP INDEX ia"), ex("DROP INDEX IF EXISTS ia")],
 "vacuum": SEED + [ex("VACUUM")],
 "reindex": SEED + [ex("CREATE INDEX ia ON t(a)"), ex("REINDEX"), ex("REINDEX t")],
 "analyze": SEED + [ex("CREATE INDEX ia ON t(a)"), ex("ANALYZE"), ex("ANALYZE t")],
 "explain": SEED + [ex("EXPLAIN SELECT * FROM t", steps=["columnNames"]), ex("EXPLAIN QUERY PLAN SELECT * FROM t WHERE id = 1", steps=["columnNames"])],
 "begin_commit": [ex("BEGIN"), ex("BEGIN TRANSACTION"), ex("COMMIT"), ex("END"), ex("ROLLBACK")],
 "savepoint_release": [ex("SAVEPOINT sp"), ex("RELEASE sp"), ex("ROLLBACK TO sp")],
 "attach_detach": [ex("ATTACH DATABASE ':memory:' AS m"), ex("DETACH DATABASE m")],
 "temp_objects": [ex("CREATE TEMP TABLE tt(x)"), ex("CREATE TEMPORARY VIEW tv AS SELECT 1"), ex("SELECT * FROM temp.sqlite_master")],
 "sqlite_master": SEED + [ex("SELECT type, name, tbl_name FROM sqlite_master ORDER BY name"), ex("SELECT name FROM sqlite_schema")],
 "vtab_fts5": [ex("CREATE VIRTUAL TABLE f USING fts5(body)"), ex("INSERT INTO f VALUES ('hello world'), ('good bye')"), ex("SELECT body FROM f WHERE f MATCH 'hello'"), ex("SELECT highlight(f, 0, '[', ']') AS h FROM f WHERE f MATCH 'world'"), ex("SELECT snippet(f, 0, '[', ']', '...', 2) AS s, typeof(bm25(f)) AS b FROM f WHERE f MATCH 'good'")],
 "vtab_fts5vocab": [ex("CREATE VIRTUAL TABLE f USING fts5(body)"), ex("INSERT INTO f VALUES ('a b a')"), ex("CREATE VIRTUAL TABLE v USING fts5vocab(f, 'row')"), ex("SELECT * FROM v")],
 "vtab_rtree": [ex("CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)"), ex("INSERT INTO r VALUES (1, 0, 10)"), ex("SELECT * FROM r WHERE x0 <= 5 AND x1 >= 5"), ex("CREATE VIRTUAL TABLE ri USING rtree_i32(id, a, b)"), ex("DROP TABLE r")],
 "vtab_other_modules": [ex("CREATE VIRTUAL TABLE g USING geopoly(a)"), ex("CREATE VIRTUAL TABLE d USING dbstat"), ex("CREATE VIRTUAL TABLE f3 USING fts4(x)"), ex("CREATE VIRTUAL TABLE f USING fts5abcd(x)"), ex("CREATE VIRTUAL TABLE s USING FTS5(x)")],
 "table_valued_functions": [ex("SELECT key, value FROM json_each('[1, 2]')"), ex("SELECT * FROM pragma_table_list() ORDER BY name", steps=["columnNames"]), ex("SELECT value FROM generate_series(1, 3)"), ex("SELECT * FROM dbstat")],
 "multi_statement": [ex("CREATE TABLE m(x); INSERT INTO m VALUES (1); SELECT * FROM m"), ex("INSERT INTO m VALUES (2); SELECT * FROM m WHERE x = ?", 2), ex("INSERT INTO m VALUES (?); SELECT 1", 3)],
 "empty_and_trailing": [ex(""), ex("   "), ex("-- just a comment"), ex("SELECT 1;"), ex("SELECT 1;;"), ex("SELECT 1; -- note"), ex("SELECT 1; SELECT 2;")],
 "comments_and_whitespace": [ex("/* c */ SELECT 1 AS x -- tail"), ex("\n\tSELECT\n2 AS y\n")],
 "reserved_names": [ex("CREATE TABLE _cf_x(a)"), ex("CREATE TABLE _CF_y(a)"), ex("CREATE TABLE _cfz(a)"), ex("SELECT * FROM _cf_KV"), ex("SELECT * FROM _cf_METADATA"), ex("CREATE INDEX _cf_i ON _cfz(a)"), ex("CREATE TABLE sqlite_x(a)"), ex("CREATE TABLE _dohost_x(a)")],
 "kv_table_after_put": [{"op": "put", "key": "a", "value": 1}, ex("SELECT * FROM _cf_KV"), ex("SELECT name FROM sqlite_master"), ex("PRAGMA table_list", steps=["columnNames"]), ex("DROP TABLE _cf_KV")],
}
write("sql_statements", "Every SQL statement kind: each result, column names and row counters.",
      [{"id": k, "ops": v} for k, v in stmts.items()])

# ---------------------------------------------------------------- pragmas
PRAGMAS = ["analysis_limit", "application_id", "auto_vacuum", "automatic_index", "busy_timeout", "cache_size", "cache_spill", "case_sensitive_like", "cell_size_check", "checkpoint_fullfsync", "collation_list", "compile_options", "data_version", "database_list", "defer_foreign_keys", "encoding", "foreign_key_check", "foreign_key_list", "foreign_keys", "freelist_count", "fullfsync", "function_list", "hard_heap_limit", "ignore_check_constraints", "incremental_vacuum", "index_info", "index_list", "index_xinfo", "integrity_check", "journal_mode", "journal_size_limit", "legacy_alter_table", "legacy_file_format", "locking_mode", "max_page_count", "mmap_size", "module_list", "optimize", "page_count", "page_size", "parser_trace", "pragma_list", "query_only", "quick_check", "read_uncommitted", "recursive_triggers", "reverse_unordered_selects", "schema_version", "secure_delete", "shrink_memory", "soft_heap_limit", "stats", "synchronous", "table_info", "table_list", "table_xinfo", "temp_store", "temp_store_directory", "threads", "trusted_schema", "user_version", "vdbe_trace", "wal_autocheckpoint", "wal_checkpoint", "writable_schema"]
pcases = []
IDX = [ex("CREATE TABLE p(a INTEGER PRIMARY KEY, b REFERENCES p(a), c TEXT)", steps=[]), ex("CREATE INDEX pi ON p(c)", steps=[])]
for p in PRAGMAS:
    pcases.append({"id": p, "ops": IDX + [ex(f"PRAGMA {p}", steps=["columnNames", "rowsRead", "rowsWritten"]), ex(f"PRAGMA {p} = 1", steps=["columnNames"]), ex(f"PRAGMA {p}(p)", steps=["toArray"]), ex(f"PRAGMA {p}(pi)", steps=["columnNames"])]})
pcases.append({"id": "values_read", "ops": IDX + [ex(f"PRAGMA {p}", steps=["toArray"]) for p in ["page_size", "foreign_keys", "case_sensitive_like", "defer_foreign_keys", "recursive_triggers", "reverse_unordered_selects", "legacy_alter_table", "ignore_check_constraints", "data_version"]]})
pcases.append({"id": "info_on_tables", "ops": IDX + [ex("PRAGMA table_info(p)", steps=["toArray"]), ex("PRAGMA table_xinfo(p)", steps=["toArray"]), ex("PRAGMA index_list(p)", steps=["toArray"]), ex("PRAGMA index_info(pi)", steps=["toArray"]), ex("PRAGMA index_xinfo(pi)", steps=["toArray"]), ex("PRAGMA foreign_key_list(p)", steps=["toArray"]), ex("PRAGMA foreign_key_check", steps=["toArray"]), ex("PRAGMA foreign_key_check(p)", steps=["toArray"]), ex("PRAGMA quick_check", steps=["toArray"]), ex("PRAGMA quick_check(5)", steps=["toArray"]), ex("PRAGMA quick_check(p)", steps=["toArray"]), ex("PRAGMA table_info(_cf_KV)", steps=["toArray"]), ex("PRAGMA table_list", steps=["columnNames"]), ex("SELECT name FROM pragma_table_info('p')", steps=["toArray"])]})
pcases.append({"id": "boolean_spellings", "ops": [ex(f"PRAGMA foreign_keys = {v}", steps=["toArray"]) for v in ["true", "FALSE", "yes", "no", "on", "off", "1", "0", "'on'", "\"off\"", "2", "truthy", "onwards", "-1", "maybe"]] + [ex("PRAGMA foreign_keys", steps=["toArray"])]})
pcases.append({"id": "case_of_names", "ops": [ex(f"PRAGMA {n}", steps=["toArray"]) for n in ["FOREIGN_KEYS", "Foreign_Keys", "main.foreign_keys", "temp.foreign_keys", "TABLE_LIST"]]})
pcases.append({"id": "optimize_args", "ops": IDX + [ex(f"PRAGMA optimize{a}", steps=["toArray"]) for a in ["", "(0x10002)", "(-1)", "(2147483648)", "(p)", "=1"]]})
# What user SQL sets for the connection's life, and what deleteAll() (a reset of the database in workerd) does to it.
SETS = ["foreign_keys = OFF", "case_sensitive_like = ON", "recursive_triggers = ON", "reverse_unordered_selects = 1", "ignore_check_constraints = yes", "legacy_alter_table = true"]
READS = [ex(f"PRAGMA {p}", steps=["toArray"]) for p in ["foreign_keys", "recursive_triggers", "reverse_unordered_selects", "ignore_check_constraints", "legacy_alter_table"]] + [ex("SELECT 'ABC' LIKE 'abc' AS hit", steps=["toArray"])]
pcases.append({"id": "connection_settings_and_delete_all", "ops": [ex(f"PRAGMA {a}", steps=[]) for a in SETS] + READS + [{"op": "deleteAll"}] + READS})
write("pragmas", "Every PRAGMA SQLite knows, read, set and with a table argument; workerd's allow-list decides.", pcases)

# ---------------------------------------------------------------- functions
F = {
 "core": ["abs(-3)", "changes()", "char(72, 105)", "coalesce(NULL, 2)", "concat('a', 1, NULL)", "concat_ws('-', 'a', 'b')", "format('%d-%s', 3, 'x')", "glob('a*', 'abc')", "hex('hi')", "ifnull(NULL, 'd')", "iif(1, 'y', 'n')", "instr('hello', 'l')", "last_insert_rowid()", "length('héllo')", "like('a%', 'abc')", "likelihood(1, 0.5)", "likely(1)", "lower('ABC')", "ltrim('  a')", "max(1, 5, 3)", "min(1, 5, 3)", "nullif(1, 1)", "octet_length('é')", "printf('%.2f', 3.14159)", "quote('it''s')", "typeof(random())", "length(randomblob(4))", "replace('aaa', 'a', 'b')", "round(2.567, 1)", "rtrim('a  ')", "sign(-2)", "soundex('Robert')", "substr('hello', 2, 3)", "substring('hello', 2)", "total_changes()", "trim('  a  ')", "typeof(1.0)", "unhex('6869')", "unicode('é')", "unlikely(0)", "upper('abc')", "zeroblob(3)", "load_extension('x')", "sqlite_version()", "sqlite_source_id()", "sqlite_compileoption_used('ENABLE_FTS5')", "sqlite_compileoption_get(0)", "sqlite_offset(1)", "unistr('a\\0041')", "if(1, 2, 3)", "percentile(1, 50)", "fts5(1)", "rtreecheck('r')", "geopoly_json(1)", "median(1)", "ifnull()"],
 "date": ["date('2024-01-15')", "time('12:34:56')", "datetime('2024-01-15 12:00', '+1 day')", "julianday('2024-01-01')", "unixepoch('2024-01-01')", "strftime('%Y/%m/%d', '2024-03-04')", "timediff('2024-03-04', '2024-01-01')", "typeof(current_date)", "typeof(current_time)", "typeof(current_timestamp)", "date('now') = date('now')", "datetime(0, 'unixepoch')", "datetime('2024-01-01', 'subsec')"],
 "math": ["acos(1)", "acosh(1)", "asin(0)", "asinh(0)", "atan(0)", "atan2(0, 1)", "atanh(0)", "ceil(1.2)", "ceiling(1.2)", "cos(0)", "cosh(0)", "degrees(pi())", "exp(0)", "floor(1.8)", "ln(1)", "log(100)", "log(2, 8)", "log10(1000)", "log2(8)", "mod(7, 3)", "pi()", "pow(2, 10)", "power(2, 3)", "radians(180)", "sin(0)", "sinh(0)", "sqrt(16)", "tan(0)", "tanh(0)", "trunc(2.7)", "1 / 0", "1.0 / 0", "9007199254740993", "9223372036854775807", "-9223372036854775808", "1e308 * 10", "0.1 + 0.2", "2.0", "-0.0", "1e21"],
 "json": ["json('{\"a\":1}')", "json_array(1, 'a')", "json_array_length('[1,2]')", "json_extract('{\"a\":[1,2]}', '$.a[1]')", "'{\"a\":1}' -> '$.a'", "'{\"a\":1}' ->> '$.a'", "json_insert('{}', '$.x', 1)", "json_object('a', 1)", "json_patch('{\"a\":1}', '{\"b\":2}')", "json_remove('[1,2]', '$[0]')", "json_replace('{\"a\":1}', '$.a', 2)", "json_set('{}', '$.a', 3)", "json_type('[]')", "json_valid('{')", "json_quote('x')", "jsonb('[1]')", "json_pretty('[1]')", "jsonb_array(1)", "json_error_position('{')"],
}
fcases = []
for cls, exprs in F.items():
    for i in range(0, len(exprs), 10):
        fcases.append({"id": f"{cls}_{i // 10}", "ops": [ex(f"SELECT {e} AS v", steps=["toArray", "rowsRead"]) for e in exprs[i:i + 10]]})
fcases.append({"id": "aggregates", "ops": SEED + [ex(f"SELECT {e} AS v FROM t", steps=["toArray", "rowsRead"]) for e in ["avg(b)", "count(*)", "count(b)", "group_concat(a)", "group_concat(a, '|')", "max(b)", "min(b)", "string_agg(a, ',')", "sum(b)", "total(b)", "json_group_array(a)", "json_group_object(a, b)", "median(b)", "percentile(b, 50)"]]})
fcases.append({"id": "windows", "ops": SEED + [ex(f"SELECT a, {e} AS v FROM t ORDER BY id", steps=["toArray"]) for e in ["row_number() OVER (ORDER BY id)", "rank() OVER (ORDER BY b)", "dense_rank() OVER (ORDER BY b)", "percent_rank() OVER (ORDER BY id)", "cume_dist() OVER (ORDER BY id)", "ntile(2) OVER (ORDER BY id)", "lag(a) OVER (ORDER BY id)", "lead(a, 1, 'end') OVER (ORDER BY id)", "first_value(a) OVER (ORDER BY id)", "last_value(a) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)", "nth_value(a, 2) OVER (ORDER BY id)", "sum(b) OVER (ORDER BY id ROWS 1 PRECEDING)"]]})
fcases.append({"id": "collations", "ops": [ex("SELECT 'a' = 'A' COLLATE NOCASE AS v"), ex("SELECT 'a ' = 'a' COLLATE RTRIM AS v"), ex("SELECT 'a' < 'b' COLLATE BINARY AS v"), ex("SELECT 'a' = 'A' COLLATE unknown AS v")]})
write("functions", "Each class of SQL function (core, date, math, JSON, aggregate, window), allowed and denied.", fcases)

# ---------------------------------------------------------------- limits
def R(ch, n): return {"$repeat": [ch, n]}
def cat(*parts): return {"$cat": list(parts)}
def sel(sql, *args, steps=("toArray",)):
    return ex(sql, *args, steps=steps)
lim = {}
base_len = len("SELECT '' AS v")
lim["sql_length"] = [sel(cat("SELECT '", R("a", 100000 - base_len), "' AS v"), steps=["columnNames"]), sel(cat("SELECT '", R("a", 100001 - base_len), "' AS v"), steps=["columnNames"])]
lim["sql_length_multi"] = [sel(cat("SELECT 1; SELECT '", R("a", 100000 - base_len - 10), "' AS v"), steps=["columnNames"]), sel(cat("SELECT 1; SELECT '", R("a", 100001 - base_len), "' AS v"), steps=["columnNames"])]
lim["columns"] = [sel("SELECT " + ", ".join(f"{i} AS c{i}" for i in range(100)), steps=["columnNames"]), sel("SELECT " + ", ".join(f"{i} AS c{i}" for i in range(101)), steps=["columnNames"]),
                  ex("CREATE TABLE w(" + ", ".join(f"c{i}" for i in range(100)) + ")"), ex("CREATE TABLE w2(" + ", ".join(f"c{i}" for i in range(101)) + ")")]
lim["expr_depth"] = [sel("SELECT " + "(" * 49 + "1" + ")" * 49 + " AS v"), sel("SELECT " + "-" * 98 + "1 AS v"), sel("SELECT " + "-" * 99 + "1 AS v"), sel("SELECT " + "-" * 100 + "1 AS v"), sel("SELECT " + " + ".join(["1"] * 99) + " AS v"), sel("SELECT " + " + ".join(["1"] * 100) + " AS v"), sel("SELECT " + " + ".join(["1"] * 101) + " AS v")]
lim["compound_select"] = [sel(" UNION ALL ".join(["SELECT 1 AS v"] * 5)), sel(" UNION ALL ".join(["SELECT 1 AS v"] * 6))]
lim["function_args"] = [sel("SELECT max(" + ", ".join(["1"] * 127) + ") AS v"), sel("SELECT max(" + ", ".join(["1"] * 128) + ") AS v")]
lim["like_pattern"] = [sel("SELECT 'a' LIKE '" + "%" * 50 + "' AS v"), sel("SELECT 'a' LIKE '" + "%" * 51 + "' AS v"), sel("SELECT 'a' GLOB '" + "*" * 51 + "' AS v")]
lim["variables"] = [sel("SELECT " + ", ".join(["?"] * 100) + " AS v", *range(100), steps=["raw"]), sel("SELECT " + ", ".join(["?"] * 101) + " AS v", *range(101), steps=["raw"]), sel("SELECT ?100 AS v", *range(100)), sel("SELECT ?101 AS v", *range(101)), sel("SELECT :a AS v", 1)]
lim["value_length"] = [sel("SELECT length(zeroblob(2200000)) AS v"), sel("SELECT length(zeroblob(2200001)) AS v"), sel("SELECT length(printf('%.*c', 2200000, 'x')) AS v"), sel("SELECT length(printf('%.*c', 2200001, 'x')) AS v"), sel("SELECT length(? || '') AS v", R("x", 2200000)), sel("SELECT length(? || '') AS v", R("x", 2200001))]
lim["trigger_depth"] = [ex("CREATE TABLE c(n INT)"), ex("CREATE TRIGGER ct AFTER INSERT ON c WHEN new.n < 100 BEGIN INSERT INTO c VALUES (new.n + 1); END"), ex("PRAGMA recursive_triggers = true"), ex("INSERT INTO c VALUES (90)"), ex("SELECT count(*) AS k FROM c"), ex("INSERT INTO c VALUES (89)"), ex("SELECT count(*) AS k FROM c")]
lim["kv_key_size"] = [{"op": "put", "key": R("k", 2048), "value": 1}, {"op": "put", "key": R("k", 2049), "value": 1}, {"op": "get", "key": R("k", 2049)}, {"op": "delete", "key": R("k", 2049)}, {"op": "kv.put", "key": R("q", 2049), "value": 1}, {"op": "kv.get", "key": R("q", 2049)}, {"op": "put", "key": R("é", 1025), "value": 1}, {"op": "put", "key": R("x", 100000), "value": 1}, {"op": "list", "options": {"$dict": [["limit", 2]]}}]
lim["kv_big_keys"] = [{"op": "put", "key": R("z", 2200000), "value": 1}, {"op": "kv.put", "key": R("z", 2199990), "value": 1}, {"op": "kv.get", "key": R("z", 2200001)}]
lim["kv_value_size"] = [{"op": "put", "key": "a", "value": R("x", 131072)}, {"op": "put", "key": "b", "value": R("x", 131100)}, {"op": "put", "key": "c", "value": R("x", 2097152)}, {"op": "put", "key": "d", "value": R("x", 2199990)}, {"op": "put", "key": "e", "value": R("x", 2200000)}, {"op": "kv.put", "key": "f", "value": R("x", 2200000)}, {"op": "put", "key": "g", "value": {"$bytes": "00", "$times": 2199990}}, {"op": "put", "key": "h", "value": {"$bytes": "00", "$times": 2200000}}, {"op": "list", "options": {"$dict": [["limit", 0.5]]}}, {"op": "kv.list"}]
for kind in ("sql", "kv"):
    lim[f"batch_{kind}"] = [{"op": "put", "entries": {"$dict": [[f"k{i}", i] for i in range(128)]}}, {"op": "put", "entries": {"$dict": [[f"m{i}", i] for i in range(129)]}}, {"op": "put", "entries": {"$dict": [[f"n{i}", i] for i in range(1000)]}},
        {"op": "get", "keys": [f"k{i}" for i in range(128)]}, {"op": "get", "keys": [f"k{i}" for i in range(129)]}, {"op": "delete", "keys": [f"k{i}" for i in range(129)]}, {"op": "delete", "keys": [f"k{i}" for i in range(128)]}, {"op": "list", "options": {"$dict": [["limit", 3]]}}]
lim["kv_class_key_size"] = [{"op": "put", "key": R("k", 2048), "value": 1}, {"op": "put", "key": R("k", 2049), "value": 1}, {"op": "get", "key": R("k", 2049)}, {"op": "delete", "key": R("k", 2049)}, {"op": "put", "key": R("x", 100000), "value": 1}, {"op": "list", "options": {"$dict": [["limit", 2]]}}]
lim["kv_class_value_size"] = [{"op": "put", "key": "a", "value": R("x", 131072)}, {"op": "put", "key": "b", "value": R("x", 131100)}, {"op": "put", "key": "c", "value": R("x", 2097152)}, {"op": "put", "key": "e", "value": R("x", 2200000)}, {"op": "list", "options": {"$dict": [["limit", 1]]}}]
cases = [{"id": k, "ops": v, **({"kind": "kv"} if k.startswith("kv_class") or k == "batch_kv" else {})} for k, v in lim.items()]
write("limits", "Each limit at its edge and one past it (SQLite limits, KV key/value sizes, batch sizes) on both kinds of class.", cases)

# ---------------------------------------------------------------- errors
err = {
 "syntax": [ex("SELEC 1"), ex("SELECT * FROM"), ex("SELECT 'unterminated"), ex("SELECT 1 +"), ex("CREATE TABLE (x)")],
 "no_such": [ex("SELECT * FROM nope"), ex("SELECT nope FROM sqlite_master"), ex("SELECT nope()"), ex("INSERT INTO nope VALUES (1)"), ex("DROP INDEX nope")],
 "constraints": [ex("CREATE TABLE c(id INTEGER PRIMARY KEY, u TEXT UNIQUE, n TEXT NOT NULL, k INT CHECK (k > 0), p INT REFERENCES c(id))"), ex("INSERT INTO c VALUES (1, 'a', 'n', 1, NULL)"), ex("INSERT INTO c VALUES (1, 'b', 'n', 1, NULL)"), ex("INSERT INTO c VALUES (2, 'a', 'n', 1, NULL)"), ex("INSERT INTO c VALUES (3, 'c', NULL, 1, NULL)"), ex("INSERT INTO c VALUES (4, 'd', 'n', 0, NULL)"), ex("CREATE TABLE k(a TEXT PRIMARY KEY) WITHOUT ROWID"), ex("INSERT INTO k VALUES ('x'), ('x')"), ex("CREATE TABLE m(a, b, PRIMARY KEY (a, b))"), ex("INSERT INTO m VALUES (1, 2), (1, 2)"), ex("CREATE UNIQUE INDEX mu ON c(n)"), ex("INSERT INTO c VALUES (5, 'e', 'n', 1, NULL)")],
 "foreign_keys": [ex("PRAGMA foreign_keys = ON"), ex("CREATE TABLE a(id INTEGER PRIMARY KEY)"), ex("CREATE TABLE b(x REFERENCES a(id))"), ex("INSERT INTO b VALUES (1)"), ex("INSERT INTO a VALUES (1)"), ex("INSERT INTO b VALUES (1)"), ex("DELETE FROM a")],
 "deferred_foreign_key_in_transaction_sync": [ex("CREATE TABLE a(id INTEGER PRIMARY KEY)"), ex("CREATE TABLE b(x REFERENCES a(id) DEFERRABLE INITIALLY DEFERRED)"), ex("PRAGMA foreign_keys = ON"), {"op": "transactionSync", "ops": [ex("INSERT INTO b VALUES (7)")]}, ex("SELECT count(*) AS n FROM b")],
 "strict_types": [ex("CREATE TABLE s(i INTEGER, r REAL, t TEXT, b BLOB, a ANY) STRICT"), ex("INSERT INTO s(i) VALUES ('x')"), ex("INSERT INTO s(r) VALUES (x'00')"), ex("INSERT INTO s(i) VALUES (?)", 1.5), ex("INSERT INTO s(i) VALUES (?)", 2), ex("SELECT * FROM s"), ex("CREATE TABLE s2(x DATE) STRICT")],
 "bindings": [ex("SELECT ? AS a"), ex("SELECT ? AS a", 1, 2), ex("SELECT 1 AS a", 1), ex("SELECT ?2 AS a", 1), ex("SELECT 1; SELECT ? AS a", 1, 2), ex("SELECT ? AS a; SELECT 2", 1)],
 "cursor_one": [ex(T), ex("SELECT * FROM t", steps=["one"]), ex("INSERT INTO t(a) VALUES ('a'), ('b')"), ex("SELECT * FROM t", steps=["one", "one", "toArray"]), ex("SELECT a FROM t WHERE a = 'a'", steps=["one", "rowsRead"]), ex("INSERT INTO t(a) VALUES ('c')", steps=["one"])],
 "cursor_reuse": [ex(T), ex("INSERT INTO t(a) VALUES ('a'), ('b'), ('c')"), ex("SELECT a FROM t", steps=["next", "raw", "next", "toArray", "columnNames", "rowsRead"]), ex("SELECT a FROM t", steps=["iter", "iter", "next"]), ex("SELECT a FROM t", steps=["rawNext", "toArray", "rowsRead"]), ex("SELECT a FROM t WHERE 0", steps=["next", "columnNames", "rowsRead"])],
 "misuse_of_exec": [ex("SELECT ? AS v", {"$int": "9007199254740993"}), ex("SELECT ? AS v", True), ex("SELECT ? AS v", None)],
 "object_bindings": [ex("SELECT ?", {"$dict": [["a", 1]]}), ex("SELECT ?", [1, 2])],
 "kv_api_misuse": [{"op": "put", "key": "k"}, {"op": "put", "key": "k", "value": None}, {"op": "put", "entries": {"$dict": [["a", 1]]}, "value": 2}, {"op": "get", "key": None}, {"op": "delete", "key": None}, {"op": "kv.put", "key": "k"}, {"op": "kv.put", "key": "k", "value": None}, {"op": "kv.get", "key": None}, {"op": "list", "options": {"$dict": [["start", "a"], ["startAfter", "b"]]}}, {"op": "list", "options": {"$dict": [["limit", 0]]}}, {"op": "list", "options": {"$dict": [["limit", -1]]}}, {"op": "list", "options": {"$dict": [["prefix", 1]]}}, {"op": "list", "options": {"$dict": [["reverse", "yes"]]}}, {"op": "kv.list", "options": {"$dict": [["limit", 0]]}}, {"op": "kv.list", "options": {"$dict": [["start", "a"], ["startAfter", "b"]]}}, {"op": "list"}],
 "unstorable_values": [{"op": "put", "key": "f", "value": {"$float": "nan"}}, {"op": "get", "key": "f"}, {"op": "put", "key": "g", "value": {"$int": "9007199254740993"}}, {"op": "get", "key": "g"}, {"op": "put", "key": "h", "value": {"$dict": [["a", None]]}}, {"op": "get", "key": "h"}, {"op": "put", "key": "i", "value": [1, None, "x"]}, {"op": "get", "key": "i"}],
 "transaction_misuse": [{"op": "transaction", "ops": [{"op": "rollback"}, {"op": "rollback"}, {"op": "put", "key": "a", "value": 1}, {"op": "get", "key": "a"}, {"op": "list"}, {"op": "delete", "key": "a"}, {"op": "getAlarm"}, {"op": "setAlarm", "time": 4102444800000}, {"op": "deleteAlarm"}]}, {"op": "transaction", "ops": [{"op": "deleteAll"}]}, {"op": "transactionSync", "ops": [ex("BEGIN"), ex("SAVEPOINT x")]}],
 "alarm_misuse": [{"op": "setAlarm", "time": 0}, {"op": "setAlarm", "time": -5}, {"op": "setAlarm", "time": "soon"}, {"op": "setAlarm", "time": None}, {"op": "setAlarm", "time": {"$float": "nan"}}, {"op": "setAlarm", "time": 8.64e15 + 1}, {"op": "setAlarm", "time": True}, {"op": "getAlarm"}],
 "bookmark_misuse": [{"op": "bookmarkForTime", "time": 0}, {"op": "bookmarkForTime", "time": 1700000000000}],
}
write("errors", "Each kind of error: SQL (syntax, missing objects, constraints, types), bindings, cursor misuse, API misuse, transactions, alarms.",
      [{"id": k, "ops": v} for k, v in err.items()])

# ---------------------------------------------------------------- keys
KEYS = ["", "a", "A", "ab", "a\u0000b", "é", "\u00ff", "\u0800", "\uffff", "\U0001F600", "\U00010000", "\U0010FFFF", "日本語", "a/b", " ", "~"]
def d(*pairs): return {"$dict": [list(p) for p in pairs]}
kc = []
for kind in ("sql", "kv"):
    ops = [{"op": "put", "key": k, "value": i} for i, k in enumerate(KEYS)]
    ops += [{"op": "list"}, {"op": "list", "options": d(("reverse", True))}, {"op": "get", "keys": KEYS}, {"op": "get", "key": "\U0001F600"},
            {"op": "list", "options": d(("start", "\uffff"))}, {"op": "list", "options": d(("prefix", "a"))}, {"op": "list", "options": d(("startAfter", "\U0001F600"))},
            {"op": "list", "options": d(("end", "\U00010000"))}, {"op": "delete", "keys": ["", "\U0010FFFF", "nope"]}, {"op": "list", "options": d(("limit", 4))}]
    if kind == "sql":
        ops += [{"op": "kv.list"}, {"op": "kv.get", "key": "\U0001F600"}, {"op": "kv.delete", "key": "\U0001F600"}, {"op": "kv.list", "options": d(("prefix", "\ud83d"[:0] + "\U0001F600"[:1]))}]
    kc.append({"id": f"unicode_{kind}", "kind": kind, "ops": ops})
for kind in ("sql", "kv"):
    conv = [{"op": "put", "key": k, "value": str(k)} for k in [1, 1.5, -0.0, 1e21, 2**53, {"$int": "9007199254740993"}, True, False, {"$float": "nan"}, {"$float": "inf"}]]
    conv += [{"op": "list"}, {"op": "get", "key": 1}, {"op": "get", "key": True}, {"op": "get", "keys": [1, "1", 1.5]}, {"op": "delete", "key": 1}, {"op": "delete", "keys": [True, 1.5]}, {"op": "put", "entries": d(("1", 1))}, {"op": "list"}, {"op": "put", "key": None, "value": 1}, {"op": "list"}, {"op": "list", "options": d(("start", 1), ("end", 9))}, {"op": "list", "options": d(("prefix", 1))}]
    if kind == "sql":
        conv += [{"op": "kv.put", "key": 2, "value": "two"}, {"op": "kv.put", "key": False, "value": "f"}, {"op": "kv.get", "key": 2}, {"op": "kv.get", "key": 1.5}, {"op": "kv.delete", "key": 2}, {"op": "kv.list", "options": d(("start", 1))}]
    kc.append({"id": f"key_conversion_{kind}", "kind": kind, "ops": conv})
kc.append({"id": "object_keys", "known": {"0": "python-object-key", "1": "python-object-key", "2": "python-object-key"}, "ops": [{"op": "put", "key": [1, 2], "value": 1}, {"op": "put", "key": {"$bytes": "61"}, "value": 1}, {"op": "put", "key": d(("a", 1)), "value": 1}]})
kc.append({"id": "lone_surrogate_free_order", "ops": [{"op": "put", "entries": d(("\uffff", 1), ("\U00010000", 2), ("\ue000", 3))}, {"op": "list"}, {"op": "kv.list"}, ex("SELECT key FROM _cf_KV ORDER BY key")]})
write("kv_keys", "Unicode and astral-plane keys, and how non-string keys convert (Web IDL), on both kinds of class.", kc)

# ---------------------------------------------------------------- list options
KS = ["a", "aa", "ab", "abc", "b", "ba", "c", "\U0001F600"]
OPTS = {"start": "aa", "startAfter": "ab", "end": "c", "prefix": "a", "reverse": True, "limit": 2}
lc = []
names = list(OPTS)
combos = [c for r in range(len(names) + 1) for c in itertools.combinations(names, r)]
for kind, apis in (("sql", ["list", "kv.list"]), ("kv", ["list"])):
    chunk, n = [], 0
    for combo in combos:
        o = d(*[(k, OPTS[k]) for k in combo])
        for api in apis:
            chunk.append({"op": api, "options": o})
        if len(chunk) >= 24:
            lc.append({"id": f"{kind}_{n}", "kind": kind, "ops": [{"op": "put", "entries": d(*[(k, i) for i, k in enumerate(KS)])}] + chunk}); chunk = []; n += 1
    if chunk:
        lc.append({"id": f"{kind}_{n}", "kind": kind, "ops": [{"op": "put", "entries": d(*[(k, i) for i, k in enumerate(KS)])}] + chunk})
lc.append({"id": "edge_values", "ops": [{"op": "put", "entries": d(*[(k, i) for i, k in enumerate(KS)])}] + [{"op": "list", "options": d(*o)} for o in [
    [("prefix", "")], [("start", "")], [("end", "")], [("start", "z"), ("end", "a")], [("startAfter", "c")], [("prefix", "a"), ("start", "b")], [("prefix", "a"), ("end", "aa")], [("prefix", "\U0001F600")], [("limit", 100)], [("limit", 1.5)], [("limit", 2.0)], [("reverse", False)], [("reverse", None)], [("limit", None)], [("allowConcurrency", True)], [("noCache", True)], [("unknownOption", 1)], [("start", None), ("startAfter", "b")]]]})
lc.append({"id": "sync_list_iterator_invalidation", "ops": [{"op": "put", "entries": d(*[(k, i) for i, k in enumerate(KS)])}, {"op": "kv.list", "options": d(("limit", 3), ("reverse", True))}, {"op": "kv.list", "options": d(("startAfter", "a"), ("end", "b"))}]})
write("list_options", "Every combination of list() options (start, startAfter, end, prefix, reverse, limit) on async list and kv.list, both kinds of class.", lc)

# ---------------------------------------------------------------- values
vals = {
 "bindings": [ex("SELECT ? AS v, typeof(?) AS t", x, x) for x in [1, -1, 0, 1.5, -0.0, 2**53 - 1, 2**53, {"$int": "9007199254740993"}, {"$int": "-9223372036854775808"}, 1e300, {"$float": "nan"}, {"$float": "inf"}, {"$float": "-inf"}, True, False, "s", "", "é\U0001F600", {"$bytes": "00ff10"}, {"$bytes": ""}, None]],
 "stored_columns": [ex("CREATE TABLE v(x)"), ex("INSERT INTO v VALUES (1), (1.0), (1.5), (9007199254740991), (9007199254740992), (9007199254740993), (9223372036854775807), (-9223372036854775808), ('t'), (x'00'), (NULL), (1e300), (-0.0), (zeroblob(0)), (CAST('' AS BLOB))"), ex("SELECT x, typeof(x) AS t FROM v", steps=["toArray", "raw"])],
 "real_integer_affinity": [ex("CREATE TABLE r(i INTEGER, f REAL, n NUMERIC, t TEXT, b BLOB)"), ex("INSERT INTO r VALUES (?, ?, ?, ?, ?)", 1, 1, 1, 1, 1), ex("INSERT INTO r VALUES (?, ?, ?, ?, ?)", 2.5, 2.5, 2.5, 2.5, 2.5), ex("INSERT INTO r VALUES (?, ?, ?, ?, ?)", "3", "3", "3", "3", "3"), ex("SELECT i, typeof(i) AS ti, f, typeof(f) AS tf, n, typeof(n) AS tn, t, b, typeof(b) AS tb FROM r")],
 "kv_values": [{"op": "put", "key": f"v{i}", "value": v} for i, v in enumerate([1, 1.5, -0.0, 2**53, {"$int": "9007199254740993"}, {"$float": "inf"}, True, "s", "", {"$bytes": "00ff"}, [1, [2, "x"]], d(("a", 1), ("b", d(("c", True)))), d(("1", "x"), ("b", 2), ("0", 3)), {"$date": 1700000000123}, []])] + [{"op": "list"}, {"op": "get", "keys": ["v0", "v4", "v9", "v13", "missing"]}, {"op": "get", "key": "missing"}],
 "kv_sync_values": [{"op": "kv.put", "key": f"v{i}", "value": v} for i, v in enumerate([1, 1.5, True, "s", {"$bytes": "00ff"}, [1, "x"], d(("a", 1)), {"$date": 0}])] + [{"op": "kv.list"}, {"op": "kv.get", "key": "v4"}, {"op": "kv.get", "key": "missing"}, {"op": "kv.delete", "key": "v0"}, {"op": "kv.delete", "key": "v0"}],
 "put_get_delete_results": [{"op": "put", "key": "a", "value": 1}, {"op": "put", "entries": d(("b", 2), ("c", 3))}, {"op": "put", "entries": d()}, {"op": "get", "keys": []}, {"op": "delete", "key": "a"}, {"op": "delete", "key": "a"}, {"op": "delete", "keys": ["b", "c", "zz", "b"]}, {"op": "delete", "keys": []}, {"op": "get", "keys": ["b", "b"]}],
 "database_size": [{"op": "databaseSize"}, ex("CREATE TABLE z(x)"), {"op": "databaseSize"}, ex("INSERT INTO z VALUES (zeroblob(100000))"), {"op": "databaseSize"}, ex("DELETE FROM z"), {"op": "databaseSize"}, {"op": "put", "key": "a", "value": 1}, {"op": "databaseSize"}, {"op": "deleteAll"}, {"op": "databaseSize"}],
}
vcases = [{"id": k, "ops": v} for k, v in vals.items()]
vcases.append({"id": "kv_values_kv_class", "kind": "kv", "ops": vals["kv_values"] + vals["put_get_delete_results"]})
write("values", "How values convert: SQL bindings and results (Pyodide's number rules), KV values, batch results, databaseSize.", vcases)

# ---------------------------------------------------------------- transactions
P = lambda k, v: {"op": "put", "key": k, "value": v}
tx = {
 "sync_commit": [ex("CREATE TABLE t(x)"), {"op": "transactionSync", "ops": [ex("INSERT INTO t VALUES (1)"), {"op": "kv.put", "key": "a", "value": 1}]}, ex("SELECT * FROM t"), {"op": "kv.list"}],
 "sync_throw_rolls_back": [ex("CREATE TABLE t(x)"), {"op": "transactionSync", "ops": [ex("INSERT INTO t VALUES (1)"), {"op": "kv.put", "key": "a", "value": 1}], "throw": True}, ex("SELECT * FROM t"), {"op": "kv.list"}],
 "sync_nested": [ex("CREATE TABLE t(x)"), {"op": "transactionSync", "ops": [ex("INSERT INTO t VALUES (1)"), {"op": "transactionSync", "ops": [ex("INSERT INTO t VALUES (2)")], "throw": True}, {"op": "transactionSync", "ops": [ex("INSERT INTO t VALUES (3)")]}]}, ex("SELECT * FROM t")],
 "sync_sql_error_inside": [ex("CREATE TABLE t(x UNIQUE)"), {"op": "transactionSync", "ops": [ex("INSERT INTO t VALUES (1)"), ex("INSERT INTO t VALUES (1)"), ex("INSERT INTO t VALUES (2)")]}, ex("SELECT * FROM t")],
 "sync_async_ops_inside": [{"op": "transactionSync", "ops": [P("a", 1), {"op": "get", "key": "a"}, {"op": "list"}]}, {"op": "list"}],
 "sync_ddl_rolled_back": [{"op": "transactionSync", "ops": [ex("CREATE TABLE t(x)"), ex("CREATE INDEX ti ON t(x)")], "throw": True}, ex("SELECT name FROM sqlite_master"), ex("CREATE TABLE t(y)")],
 "async_commit": [{"op": "transaction", "ops": [P("a", 1), P("b", 2), {"op": "get", "key": "a"}, {"op": "list"}, {"op": "delete", "key": "b"}]}, {"op": "list"}],
 "async_throw": [P("z", 0), {"op": "transaction", "ops": [P("a", 1), {"op": "delete", "key": "z"}], "throw": True}, {"op": "list"}],
 "async_rollback": [P("z", 0), {"op": "transaction", "ops": [P("a", 1), {"op": "rollback"}]}, {"op": "list"}],
 "async_rollback_then_throw": [{"op": "transaction", "ops": [P("a", 1), {"op": "rollback"}], "throw": True}, {"op": "list"}],
 "async_sql_inside": [ex("CREATE TABLE t(x)"), {"op": "transaction", "ops": [ex("INSERT INTO t VALUES (1)"), P("a", 1)], "throw": True}, ex("SELECT * FROM t"), {"op": "transaction", "ops": [ex("INSERT INTO t VALUES (2)"), {"op": "rollback"}]}, ex("SELECT * FROM t"), {"op": "transaction", "ops": [ex("INSERT INTO t VALUES (3)")]}, ex("SELECT * FROM t")],
 "async_nested": [{"op": "transaction", "ops": [P("a", 1), {"op": "transaction", "ops": [P("b", 2)], "throw": True}, {"op": "transaction", "ops": [P("c", 3)]}]}, {"op": "list"}],
 "async_alarm_inside": [{"op": "transaction", "ops": [{"op": "setAlarm", "time": 4102444800000}, {"op": "getAlarm"}, {"op": "rollback"}]}, {"op": "getAlarm"}, {"op": "transaction", "ops": [{"op": "setAlarm", "time": 4102444800000}], "throw": True}, {"op": "getAlarm"}, {"op": "transaction", "ops": [{"op": "setAlarm", "time": 4102444800000}]}, {"op": "getAlarm"}],
 "deleteAll_everything": [ex("CREATE TABLE t(x)"), P("a", 1), {"op": "setAlarm", "time": 4102444800000}, {"op": "deleteAll"}, ex("SELECT name FROM sqlite_master"), {"op": "list"}, {"op": "getAlarm"}, {"op": "deleteAll"}],
 "writes_after_rollback_are_kept": [ex("CREATE TABLE t(x)"), {"op": "transaction", "ops": [ex("INSERT INTO t VALUES (1)"), {"op": "rollback"}, ex("INSERT INTO t VALUES (2)"), P("a", 1)]}, ex("SELECT x FROM t"), {"op": "list"}],
 "writes_after_rollback_survive_a_throw": [ex("CREATE TABLE t(x)"), {"op": "transaction", "ops": [ex("INSERT INTO t VALUES (1)"), {"op": "rollback"}, ex("INSERT INTO t VALUES (2)")], "throw": True}, ex("SELECT x FROM t")],
 "transaction_result_in_sql": [{"op": "transactionSync", "ops": []}, {"op": "transaction", "ops": []}],
}
tcases = [{"id": k, "ops": v} for k, v in tx.items()]
tcases.append({"id": "kv_class_transactions", "kind": "kv", "ops": [{"op": "transactionSync", "ops": []}, {"op": "transaction", "ops": [P("a", 1), {"op": "rollback"}]}, {"op": "transaction", "ops": [P("b", 1)], "throw": True}, {"op": "transaction", "ops": [P("c", 1), {"op": "deleteAll"}]}, {"op": "list"}, {"op": "deleteAll"}, {"op": "list"}]})
write("transactions", "transactionSync and transaction: commit, throw, rollback(), nesting, SQL and KV inside, deleteAll.", tcases)

# ---------------------------------------------------------------- alarms and bookmarks
al = {
 "alarm_cycle": [{"op": "getAlarm"}, {"op": "setAlarm", "time": 4102444800000}, {"op": "getAlarm"}, {"op": "setAlarm", "time": 4102444800000.5}, {"op": "getAlarm"}, {"op": "setAlarm", "time": 4102444800123.999}, {"op": "getAlarm"}, {"op": "deleteAlarm"}, {"op": "getAlarm"}, {"op": "deleteAlarm"}],
 "alarm_date_argument": [{"op": "setAlarm", "time": {"$date": 4102444800000}}, {"op": "getAlarm"}],
 "alarm_huge": [{"op": "setAlarm", "time": 8.64e15}, {"op": "getAlarm"}, {"op": "setAlarm", "time": 1e16}, {"op": "getAlarm"}],
 "bookmarks": [{"op": "bookmark"}, {"op": "bookmark"}, P("a", 1), {"op": "bookmark"}, {"op": "bookmark"}],
 "sql_and_kv_surfaces": [{"op": "sql"}, {"op": "kv"}],
}
acases = [{"id": k, "ops": v} for k, v in al.items()]
acases += [{"id": "kv_class_" + k, "kind": "kv", "ops": v} for k, v in al.items()]
acases.append({"id": "kv_class_sql_api", "kind": "kv", "ops": [ex("SELECT 1"), {"op": "databaseSize"}, {"op": "kv.get", "key": "a"}, {"op": "kv.put", "key": "a", "value": 1}, {"op": "kv.list"}, {"op": "transactionSync", "ops": []}]})
write("alarms_bookmarks", "Alarm get/set/delete (times, Dates, fractions, range), bookmarks, and which surfaces exist, on both kinds of class.", acases)

# ---------------------------------------------------------------- regressions
reg = [
 {"id": "delete_creates_the_kv_table", "note": "Found by test_generated (shrunk).",
  "ops": [{"op": "exec", "sql": "CREATE TABLE g(k TEXT PRIMARY KEY, n, r REAL, b BLOB)", "steps": []}, {"op": "delete", "key": ""}, {"op": "databaseSize"}, ex("SELECT name FROM sqlite_master")]},
 {"id": "no_name_table_in_the_file", "note": "Found by test_generated (shrunk): dohost kept the object's name in _cf_METADATA.",
  "ops": [{"op": "exec", "sql": "CREATE TABLE g(k TEXT PRIMARY KEY, n, r REAL, b BLOB)", "steps": []}, {"op": "transaction", "ops": [], "throw": False}, {"op": "transaction", "ops": [{"op": "databaseSize"}], "throw": False}, ex("SELECT name FROM sqlite_master")]},
 {"id": "delete_alarm_after_delete_all", "note": "Found by test_generated (shrunk).",
  "ops": [{"op": "exec", "sql": "CREATE TABLE g(k TEXT PRIMARY KEY, n, r REAL, b BLOB)", "steps": []}, {"op": "deleteAll"}, {"op": "deleteAlarm"}, {"op": "databaseSize"}]},
 {"id": "fractional_alarm_below_one_ms", "note": "Found by test_generated (shrunk).",
  "ops": [{"op": "setAlarm", "time": 0.5}, {"op": "getAlarm"}]},
 {"id": "rollback_is_immediate", "kind": "kv", "note": "Found by test_generated (shrunk): txn.rollback() undoes the transaction's writes at once.",
  "ops": [{"op": "transaction", "ops": [{"op": "bookmark"}, {"op": "rollback"}, {"op": "bookmark"}], "throw": False}, {"op": "bookmark"}]},
 {"id": "delete_nothing_creates_nothing", "note": "Found by test_generated (shrunk).",
  "ops": [{"op": "exec", "sql": "CREATE TABLE g(k TEXT PRIMARY KEY, n, r REAL, b BLOB)", "steps": []}, {"op": "delete", "keys": []}, {"op": "databaseSize"}]},
 {"id": "txn_delete_alarm_after_delete_all", "note": "Found by test_generated (shrunk).",
  "ops": [{"op": "exec", "sql": "CREATE TABLE g(k TEXT PRIMARY KEY, n, r REAL, b BLOB)", "steps": []}, {"op": "deleteAll"}, {"op": "transaction", "ops": [{"op": "exec", "sql": "INSERT INTO g(k, n) VALUES (?, ?)", "args": ["", None], "steps": ["toArray"]}, {"op": "deleteAlarm"}, {"op": "databaseSize"}], "throw": False}, {"op": "databaseSize"}]},
 {"id": "invalid_utf8_text", "note": "Found by test_generated (shrunk); documented in _known.py.",
  "ops": [{"op": "exec", "sql": "SELECT ? || 'x' AS v", "args": [{"$bytes": "80"}], "steps": ["toArray"]}, {"op": "exec", "sql": "SELECT CAST(? AS TEXT) AS v", "args": [{"$bytes": "ff61"}], "steps": ["toArray"]}]},
 {"id": "unread_returning_cursor", "known": {"0": "returning-unread", "1": "returning-unread"},
  "note": "Found by test_generated (shrunk): workerd breaks the object when a RETURNING cursor is left unread.",
  "ops": [{"op": "exec", "sql": "CREATE TABLE g(k TEXT PRIMARY KEY, n, r REAL, b BLOB)", "steps": []}, {"op": "exec", "sql": "INSERT OR REPLACE INTO g(k, n) VALUES (?, ?) RETURNING k, n", "args": ["", None], "steps": ["columnNames"]}]},
]
write("regressions", "Generated cases that once diverged, shrunk by Hypothesis and kept.", reg)

# ---------------------------------------------------------------- None (Pyodide's undefined) per API
nn = []
for kind in ("sql", "kv"):
    ops = [{"op": "put", "key": "a", "value": 0}, {"op": "put", "entries": d(("a", None), ("b", 1), ("c", None))}, {"op": "list"},
           {"op": "get", "keys": [None, "b"]}, {"op": "get", "key": None}, {"op": "delete", "keys": [None, "b"]}, {"op": "delete", "key": None},
           {"op": "list", "options": None}, {"op": "list", "options": d(("limit", None), ("prefix", None), ("reverse", None))},
           {"op": "put", "key": "n", "value": d(("x", None))}, {"op": "get", "key": "n"}, {"op": "put", "key": "l", "value": [1, None]}, {"op": "get", "key": "l"},
           {"op": "put", "key": None, "value": "u"}, {"op": "get", "key": "undefined"}, {"op": "list"}]
    if kind == "sql":
        ops += [{"op": "kv.put", "key": "k", "value": None}, {"op": "kv.get", "key": "k"}, {"op": "kv.list"}, {"op": "kv.list", "options": None},
                ex("SELECT ?1 AS a, typeof(?1) AS t", None), {"op": "transaction", "ops": [{"op": "put", "entries": d(("t", None))}, {"op": "list", "options": d(("prefix", "t"))}]}]
    nn.append({"id": f"none_is_undefined_{kind}", "kind": kind, "ops": ops})
nn.append({"id": "conversions_at_the_edges", "ops": [
    {"op": "kv.list", "options": "abc"}, {"op": "kv.list", "options": 5}, {"op": "list", "options": "abc"},
    ex(123), ex(None), {"op": "kv.get", "key": 1.5}, {"op": "kv.delete", "key": True}, {"op": "get", "keys": [1, 2]},
    {"op": "setAlarm", "time": {"$date": 4102444800123}}, {"op": "getAlarm"},
    {"op": "put", "key": "big", "value": {"$int": "18446744073709551617"}}, {"op": "get", "key": "big"},
    {"op": "put", "key": "neg", "value": [{"$int": "-100000000000000000000000000000000000000000"}]}, {"op": "get", "key": "neg"}]})
write("python_layer", "What a Python None (Pyodide's undefined) means to each storage API, on both kinds of class.", nn)
