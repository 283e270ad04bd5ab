"""Cloudflare's storage constants, messages and allow-lists, as workerd defines them.

Facts (names, numbers, message texts) transcribed from cloudflare/workerd sources and
Cloudflare documentation. No code is copied; only the values. Paths below are relative to
the workerd repository (https://github.com/cloudflare/workerd) unless a URL is given.

Where a fact was observed in third-party reproductions rather than read in workerd's
source, the comment says "observed". Open questions are listed in /tmp/cf_research.md.
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------------------------------
# 1. PRAGMA allow-list (SqliteDatabase::isAuthorized, case SQLITE_PRAGMA)
# ---------------------------------------------------------------------------------------
# CF: src/workerd/util/sqlite.c++ (ALLOWED_PRAGMAS + the table_list/table_info special cases)
#
# Rules, by signature (the "argument" is the pragma's value / parenthesised argument as
# SQLite hands it to the authorizer as param2):
#   "no_arg"              - allowed only with no argument at all (read-only form).
#   "boolean"             - no argument (read the value back) OR a boolean literal.
#                           The literal may be wrapped in matching '...' or "..." quotes and is
#                           compared case-insensitively *by prefix* (strncasecmp) against:
#                           true, false, yes, no, on, off, 1, 0.
#   "object_name"         - argument REQUIRED and must be an allowed name (not `_cf_`-prefixed).
#   "optional_object_name"- no argument, or an allowed name.
#   "null_or_number"      - no argument, or something that parses as an int32.
#   "null_number_or_object_name" - no argument, or an unsigned int, or an allowed name.
#   "any"                 - always allowed (table_list; it even lists the _cf_ tables).
#   "table_name"          - table_info / table_xinfo: allowed iff the named table is allowed
#                           (when invoked without a name SQLite passes none -> denied).
# Every other pragma is denied ("not authorized").
PRAGMA_RULES: Final[dict[str, str]] = {
    "data_version": "no_arg",
    # CF: workerd 1.20261117.1 (observed): `PRAGMA page_size` reads; `PRAGMA page_size = n` is denied.
    "page_size": "no_arg",
    "case_sensitive_like": "boolean",
    "foreign_keys": "boolean",
    "defer_foreign_keys": "boolean",
    "ignore_check_constraints": "boolean",
    "legacy_alter_table": "boolean",
    "recursive_triggers": "boolean",
    "reverse_unordered_selects": "boolean",
    "foreign_key_check": "optional_object_name",
    "foreign_key_list": "object_name",
    "index_info": "object_name",
    "index_list": "object_name",
    "index_xinfo": "object_name",
    "quick_check": "null_number_or_object_name",
    "optimize": "null_or_number",
    "table_list": "any",
    "table_info": "table_name",
    "table_xinfo": "table_name",
}

# CF: src/workerd/util/sqlite.c++ (derived views of PRAGMA_RULES)
ALLOWED_PRAGMAS: Final[frozenset[str]] = frozenset(PRAGMA_RULES)
#: The allowed pragmas that set something for the connection's life (SQLite's
#: per-connection flags): what user SQL sets with one holds while the object
#: lives, on Cloudflare as here, a park and reopen of its file included.
#: (``defer_foreign_keys`` is not one: SQLite clears it at every commit.)
CONNECTION_SETTINGS: Final[frozenset[str]] = frozenset(
    {"foreign_keys", "case_sensitive_like", "ignore_check_constraints", "legacy_alter_table",
     "recursive_triggers", "reverse_unordered_selects"}
)
# Pragmas that may be issued with no argument (read-only form).
ALLOWED_PRAGMAS_READONLY: Final[frozenset[str]] = frozenset(
    name for name, rule in PRAGMA_RULES.items() if rule not in ("object_name", "table_name")
)
# Pragmas that may be issued with an argument (subject to the rule for that pragma).
ALLOWED_PRAGMAS_WITH_ARG: Final[frozenset[str]] = frozenset(
    name for name, rule in PRAGMA_RULES.items() if rule != "no_arg"
)
# Accepted boolean spellings (case-insensitive prefix match, optional matching quotes).
# CF: src/workerd/util/sqlite.c++ (PragmaSignature::BOOLEAN)
PRAGMA_BOOLEAN_VALUES: Final[tuple[str, ...]] = ("true", "false", "yes", "no", "on", "off", "1", "0")

# ---------------------------------------------------------------------------------------
# 2. SQL function allow-list (SqliteDatabase::isAuthorized, case SQLITE_FUNCTION)
# ---------------------------------------------------------------------------------------
# CF: src/workerd/util/sqlite.c++ (ALLOWED_SQLITE_FUNCTIONS)
# Exact-match on the name SQLite passes (lower-case built-in names). Deliberately absent:
# sqlite_compileoption_get, sqlite_compileoption_used, sqlite_offset, sqlite_source_id,
# sqlite_version, plus anything not listed (e.g. fts5 internals, rtree helpers, printf-only
# aliases not listed). Denied functions fail at prepare time with SQLite's own message
# "not authorized to use function: <name>" (see FUNCTION_NOT_AUTHORIZED_TEMPLATE).
# Note: "load_extension" IS on the list, but SQLite itself refuses it unless extension
# loading is enabled (it is not), so it still fails.
ALLOWED_FUNCTIONS: Final[frozenset[str]] = frozenset({
    # core functions (https://www.sqlite.org/lang_corefunc.html)
    "abs", "changes", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex",
    "ifnull", "iif", "instr", "last_insert_rowid", "length", "like", "likelihood", "likely",
    "load_extension", "lower", "ltrim", "max_scalar", "min_scalar", "nullif", "octet_length",
    "printf", "quote", "random", "randomblob", "replace", "round", "rtrim", "sign", "soundex",
    "substr", "substring", "total_changes", "trim", "typeof", "unhex", "unicode", "unlikely",
    "upper", "zeroblob",
    # date/time (https://www.sqlite.org/lang_datefunc.html)
    "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
    "current_date", "current_time", "current_timestamp",
    # aggregates (https://www.sqlite.org/lang_aggfunc.html)
    "avg", "count", "group_concat", "max", "min", "string_agg", "sum", "total",
    # window functions (https://www.sqlite.org/windowfunctions.html#biwinfunc)
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
    # math (https://www.sqlite.org/lang_mathfunc.html)
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "cos", "cosh",
    "degrees", "exp", "floor", "ln", "log", "log2", "mod", "pi", "pow", "radians", "sin",
    "sinh", "sqrt", "tan", "tanh", "trunc",
    # JSON (https://www.sqlite.org/json1.html)
    "json", "json_array", "json_array_length", "json_extract", "->", "->>", "json_insert",
    "json_object", "json_patch", "json_remove", "json_replace", "json_set", "json_type",
    "json_valid", "json_quote", "json_group_array", "json_group_object", "json_each",
    "json_tree",
    # JSONB (CF: workerd 1.20261117.1, observed: each one runs)
    "jsonb", "jsonb_array", "jsonb_extract", "jsonb_group_array", "jsonb_group_object",
    "jsonb_insert", "jsonb_object", "jsonb_patch", "jsonb_remove", "jsonb_replace", "jsonb_set",
    # R*Tree (CF: workerd 1.20261117.1, observed: rtreecheck runs; rtreenode/rtreedepth are denied)
    "rtreecheck",
    # FTS5 (https://www.sqlite.org/fts5.html)
    "match", "highlight", "bm25", "snippet",
    # used internally by ALTER TABLE (sqlite src/alter.c)
    "sqlite_rename_column", "sqlite_rename_table", "sqlite_rename_test",
    "sqlite_drop_column", "sqlite_rename_quotefix",
})
# Functions workerd comments out on purpose ("query SQLite internals and build details").
# CF: src/workerd/util/sqlite.c++ (commented-out entries of ALLOWED_SQLITE_FUNCTIONS)
DENIED_INTROSPECTION_FUNCTIONS: Final[frozenset[str]] = frozenset({
    "sqlite_compileoption_get", "sqlite_compileoption_used", "sqlite_offset",
    "sqlite_source_id", "sqlite_version",
})

# Functions apsw's SQLite has but workerd's build lacks: workerd answers
# "no such function: <name>" (it never reaches the authorizer), so dohost reports them the
# same way. CF: workerd 1.20261117.1 (observed; built without FTS3, geopoly, percentile).
MISSING_FUNCTIONS: Final[frozenset[str]] = frozenset({
    "fts3_tokenizer", "matchinfo", "offsets", "optimize",
    "geopoly_area", "geopoly_bbox", "geopoly_blob", "geopoly_ccw", "geopoly_contains_point",
    "geopoly_debug", "geopoly_group_bbox", "geopoly_json", "geopoly_overlap", "geopoly_regular",
    "geopoly_svg", "geopoly_within", "geopoly_xform",
    "median", "percentile", "percentile_cont", "percentile_disc",
})
# Eponymous virtual tables apsw's SQLite has and workerd's lacks ("no such table: dbstat").
MISSING_TABLES: Final[frozenset[str]] = frozenset({"dbstat"})

# ---------------------------------------------------------------------------------------
# 3. Virtual table modules (case SQLITE_CREATE_VTABLE / SQLITE_DROP_VTABLE)
# ---------------------------------------------------------------------------------------
# CF: src/workerd/util/sqlite.c++ (strcasecmp against the module name), and workerd
# 1.20261117.1 (observed): `CREATE VIRTUAL TABLE r USING rtree(...)` and `rtree_i32` work;
# `USING fts5abcd(...)`, geopoly, fts3/fts4 and dbstat are refused.
ALLOWED_VTABLE_MODULES: Final[frozenset[str]] = frozenset({"fts5", "fts5vocab", "rtree", "rtree_i32"})

# Other authorizer facts. CF: src/workerd/util/sqlite.c++ (isAuthorized / isAuthorizedTemp)
#  - ATTACH / DETACH: always denied. Any database other than "main" (and "temp") denied.
#  - temp database: only SQLITE_READ / SQLITE_UPDATE on allowed names; CREATE TEMP TABLE /
#    INDEX / TRIGGER / VIEW (and DROP) always denied.
#  - SQLITE_ANALYZE: allowed for all names (PRAGMA optimize issues a bare ANALYZE).
#  - SQLITE_RECURSIVE (WITH RECURSIVE): allowed. SQLITE_SELECT: allowed.
#  - Names (tables, indexes, views, triggers, savepoints) are checked with isAllowedName.
AUTHORIZER_DENIED_ACTIONS: Final[frozenset[str]] = frozenset({
    "ATTACH", "DETACH", "CREATE_TEMP_TABLE", "DROP_TEMP_TABLE", "CREATE_TEMP_INDEX",
    "DROP_TEMP_INDEX", "CREATE_TEMP_TRIGGER", "DROP_TEMP_TRIGGER", "CREATE_TEMP_VIEW",
    "DROP_TEMP_VIEW", "COPY",
})

# ---------------------------------------------------------------------------------------
# Reserved names
# ---------------------------------------------------------------------------------------
# CF: src/workerd/api/sql.c++ (SqlStorageRegulator::isAllowedName)
# Only the `_cf_` prefix is reserved. Historically a case-SENSITIVE startsWith("_cf_");
# behind autogate SQL_RESTRICT_RESERVED_NAMES it becomes case-INSENSITIVE (strncasecmp), and
# without the autogate a case-insensitive match only logs a warning. `sqlite_` names are
# protected by SQLite itself (defensive mode / reserved), not by this regulator.
RESERVED_NAME_PREFIX: Final[str] = "_cf_"
RESERVED_NAME_PREFIX_CASE_INSENSITIVE: Final[bool] = True  # production direction (autogate)

# ---------------------------------------------------------------------------------------
# 4. Transaction statements in SQL
# ---------------------------------------------------------------------------------------
# CF: src/workerd/api/sql.c++ (SqlStorageRegulator::allowTransactions)
# Raised (as a JS `Error`) from the authorizer for BEGIN / COMMIT / ROLLBACK
# (SQLITE_TRANSACTION) and SAVEPOINT / RELEASE / ROLLBACK TO (SQLITE_SAVEPOINT) — i.e. all of
# them, because allowTransactions() is consulted first for both action codes. The thrown
# exception is stashed in the parse context and rethrown verbatim in place of SQLite's
# SQLITE_AUTH, so the message has NO ": SQLITE_AUTH" suffix and no offset.
TRANSACTION_STATEMENT_MESSAGE: Final[str] = (
    "To execute a transaction, please use the state.storage.transaction() or "
    "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT "
    "statements. The JavaScript API is safer because it will automatically roll back on "
    "exceptions, and because it interacts correctly with Durable Objects' automatic atomic "
    "write coalescing."
)
# CF: src/workerd/util/sqlite.c++ (SQLITE_TRANSACTION / SQLITE_SAVEPOINT cases)
TRANSACTION_STATEMENT_KEYWORDS: Final[frozenset[str]] = frozenset({
    "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE",
})

# ---------------------------------------------------------------------------------------
# 5. SQL error formatting and messages
# ---------------------------------------------------------------------------------------
# CF: src/workerd/util/sqlite.c++ (dbErrorMessage / namedErrorCode)
# Format: sqlite3_errmsg(db) + (" at offset " + N if sqlite3_error_offset(db) != -1)
#         + ": " + <primary result code name, e.g. SQLITE_ERROR>.
# The user sees it as a JS Error via SqlStorageRegulator::onError (message unchanged).
# Example: 'near "bunk": syntax error at offset 0: SQLITE_ERROR'.
# Observed (not in the source version read): newer runtimes append
# " (extended: SQLITE_CONSTRAINT_UNIQUE)" etc. when the extended code differs from the
# primary one, e.g. 'UNIQUE constraint failed: t.x: SQLITE_CONSTRAINT (extended:
# SQLITE_CONSTRAINT_UNIQUE)'.
SQL_ERROR_TEMPLATE: Final[str] = "{message}{offset_part}: {code}"
SQL_ERROR_OFFSET_TEMPLATE: Final[str] = " at offset {offset}"
SQL_ERROR_EXTENDED_TEMPLATE: Final[str] = " (extended: {extended})"  # observed
# Names used for primary result codes; unknown codes render as SQLITE_UNKNOWN_ERROR_CODE(n).
# CF: src/workerd/util/sqlite.c++ (namedErrorCode)
SQLITE_PRIMARY_CODE_NAMES: Final[dict[int, str]] = {
    0: "SQLITE_OK", 1: "SQLITE_ERROR", 2: "SQLITE_INTERNAL", 3: "SQLITE_PERM",
    4: "SQLITE_ABORT", 5: "SQLITE_BUSY", 6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM",
    8: "SQLITE_READONLY", 9: "SQLITE_INTERRUPT", 10: "SQLITE_IOERR", 11: "SQLITE_CORRUPT",
    12: "SQLITE_NOTFOUND", 13: "SQLITE_FULL", 14: "SQLITE_CANTOPEN", 15: "SQLITE_PROTOCOL",
    16: "SQLITE_EMPTY", 17: "SQLITE_SCHEMA", 18: "SQLITE_TOOBIG", 19: "SQLITE_CONSTRAINT",
    20: "SQLITE_MISMATCH", 21: "SQLITE_MISUSE", 22: "SQLITE_NOLFS", 23: "SQLITE_AUTH",
    24: "SQLITE_FORMAT", 25: "SQLITE_RANGE", 26: "SQLITE_NOTADB", 27: "SQLITE_NOTICE",
    28: "SQLITE_WARNING", 100: "SQLITE_ROW", 101: "SQLITE_DONE",
}
SQLITE_UNKNOWN_CODE_TEMPLATE: Final[str] = "SQLITE_UNKNOWN_ERROR_CODE({code})"

# SQLite's own messages for authorizer denials (they go through the template above).
# CF: sqlite src/resolve.c / src/auth.c, as surfaced by workerd (observed:
#     'not authorized to use function: sqlite_version at offset 7: SQLITE_ERROR')
FUNCTION_NOT_AUTHORIZED_TEMPLATE: Final[str] = "not authorized to use function: {name}"
NOT_AUTHORIZED_MESSAGE: Final[str] = "not authorized"  # generic denial -> ": SQLITE_AUTH"

# Messages raised by workerd itself (no ": SQLITE_*" suffix).
# CF: src/workerd/util/sqlite.c++ (prepareSql / Query::checkRequirements)
EMPTY_STATEMENT_MESSAGE: Final[str] = "SQL code did not contain a statement."
SINGLE_STATEMENT_MESSAGE: Final[str] = "A prepared SQL statement must contain only one statement."
MULTI_STATEMENT_PARAMS_MESSAGE: Final[str] = (
    "When executing multiple SQL statements in a single call, only the last statement "
    "can have parameters."
)
WRONG_BINDINGS_MESSAGE: Final[str] = "Wrong number of parameter bindings for SQL query."
STATEMENT_BUSY_MESSAGE: Final[str] = "A SQL prepared statement can only be executed once at a time."
QUERY_CANCELED_BY_RESET_MESSAGE: Final[str] = (
    "SQLite query was canceled because the database was deleted."
)
# Whitespace skipped after each statement when looking for a following statement.
# CF: src/workerd/util/sqlite.c++ (prepareSql: ' ', \t, \n, \r, \v, \f)
STATEMENT_TRAILING_WHITESPACE: Final[str] = " \t\n\r\v\f"

# Cursor messages. CF: src/workerd/api/sql.c++ (Cursor::one / Cursor::iteratorImpl)
CURSOR_ONE_NO_RESULTS_MESSAGE: Final[str] = (
    "Expected exactly one result from SQL query, but got no results."
)
CURSOR_ONE_MULTIPLE_RESULTS_MESSAGE: Final[str] = (
    "Expected exactly one result from SQL query, but got multiple results."
)
CURSOR_CANCELED_MESSAGE: Final[str] = (
    "SQL cursor was closed because the same statement was executed again. If you need to "
    "run multiple copies of the same statement concurrently, you must create multiple "
    "prepared statement objects."
)
# Max total size (bytes of SQL text) of the per-object statement cache (LRU-evicted).
# CF: src/workerd/api/sql.c++ (SQL_STATEMENT_CACHE_MAX_SIZE)
SQL_STATEMENT_CACHE_MAX_SIZE: Final[int] = 1024 * 1024

# Sync KV list iterator invalidation. CF: src/workerd/api/sync-kv.c++ (listNext)
KV_LIST_INVALIDATED_MESSAGE: Final[str] = (
    "kv.list() iterator was invalidated because a new call to kv.list() was started. Only one "
    "kv.list() iterator can exist at a time."
)
# CF: src/workerd/api/sync-kv.c++ (parseProjection) — newest versions only.
KV_LIST_PROJECTION_MESSAGE: Final[str] = (
    'options.projection must be "keys", "values", or "entries".'
)

# KV list() option validation. CF: src/workerd/api/actor-state.c++ (list / compileListOptions)
LIST_START_AND_START_AFTER_MESSAGE: Final[str] = (
    "list() cannot be called with both start and startAfter values."
)  # TypeError
LIST_LIMIT_POSITIVE_MESSAGE: Final[str] = "List limit must be positive."  # TypeError
# CF: workerd 1.20261117.1 (observed): list("abc") / list(5)
LIST_OPTIONS_TYPE_TEMPLATE: Final[str] = (
    "Failed to execute 'list' on '{cls}': parameter 1 is not of type 'ListOptions'."
)

# put() misuse. CF: src/workerd/api/actor-state.c++ (DurableObjectStorageOperations::put)
PUT_UNDEFINED_VALUE_MESSAGE: Final[str] = "put() called with undefined value."  # TypeError
PUT_OVERLOAD_MESSAGE: Final[str] = (
    "put() may only be called with a single key-value pair and optional options as "
    "put(key, value, options) or with multiple key-value pairs and optional options as "
    "put(entries, options)"
)  # TypeError
# CF: src/workerd/api/actor-state.c++ (setAlarm)
SET_ALARM_NON_POSITIVE_MESSAGE: Final[str] = (
    "setAlarm() cannot be called with an alarm time <= 0"
)  # TypeError

# Transaction misuse. CF: src/workerd/api/actor-state.c++ (DurableObjectTransaction) and
# src/workerd/io/actor-sqlite.c++ (ActorSqlite::deleteAll, ExplicitTxn::rollback)
# {op} is one of TRANSACTION_OP_NAMES' values.
TXN_ROLLED_BACK_TEMPLATE: Final[str] = "Cannot {op} on rolled back transaction"
TXN_ALREADY_COMMITTED_TEMPLATE: Final[str] = (
    "Cannot call {op} on transaction that has already committed: did you move `txn` outside "
    "of the closure?"
)
DELETE_ALL_IN_TRANSACTION_MESSAGE: Final[str] = "Cannot call deleteAll() within a transaction"
NESTED_TXN_ROLLBACK_MESSAGE: Final[str] = (
    "Cannot roll back an outer transaction while a nested transaction is still running."
)
# CF: src/workerd/api/actor-state.h (DurableObjectStorageOperations::OP_*)
TRANSACTION_OP_NAMES: Final[dict[str, str]] = {
    "get": "get()",
    "getAlarm": "getAlarm()",
    "list": "list()",
    "put": "put()",
    "setAlarm": "setAlarm()",
    "delete": "delete()",
    "deleteAlarm": "deleteAlarm()",
    "rename": "rename()",
    "rollback": "rollback()",
}
# Savepoint names workerd uses internally (all `_cf_`-prefixed, so user SQL cannot touch them).
# CF: src/workerd/api/actor-state.c++ (transactionSync), src/workerd/io/actor-sqlite.c++
#     (ExplicitTxn), src/workerd/util/sqlite-kv.c++ (multi-put)
TRANSACTION_SYNC_SAVEPOINT_PREFIX: Final[str] = "_cf_sync_savepoint_"  # + depth (0-based)
TRANSACTION_SAVEPOINT_PREFIX: Final[str] = "_cf_savepoint_"  # + depth (0-based)
PUT_MULTIPLE_SAVEPOINT: Final[str] = "_cf_put_multiple_savepoint"

# Deferred-constraint failure at implicit/explicit commit (SQLITE_CONSTRAINT at COMMIT):
# the object is reset (broken output gate) and this Error is thrown; the SQLite message
# (formatted per SQL_ERROR_TEMPLATE) is appended directly after the colon+space.
# CF: src/workerd/io/actor-sqlite.c++ (TxnCommitRegulator::onError)
DEFERRED_CONSTRAINT_RESET_PREFIX: Final[str] = (
    "Durable Object was reset and rolled back to its last known good state because the "
    "application left the database in a state where constraints were violated: "
)

# Not SQLite-backed. CF: src/workerd/api/actor-state.c++ (getSqliteDb / transactionSync)
SQL_NOT_SQLITE_BACKED_MESSAGE: Final[str] = (
    "This Durable Object is not backed by SQLite storage, so the SQL API is not available. "
    "SQL can be enabled on a new Durable Object class by using the `new_sqlite_classes` "
    "instead of `new_classes` under `[[migrations]]` in your wrangler.toml, but an "
    "already-deployed class cannot be converted to SQLite (except by deleting the existing "
    "data)."
)
# Local workerd variant (enableSql = false while the store is SQLite).
SQL_NOT_ENABLED_MESSAGE: Final[str] = (
    "SQL is not enabled for this Durable Object class. To enable it, set "
    "`enableSql = true` in your workerd config for the class. If using wrangler, "
    "under `[[migrations]]` in wrangler.toml, change `new_classes` to "
    "`new_sqlite_classes`. Note that this change cannot be made after the class is "
    "already deployed to production."
)
TRANSACTION_SYNC_NOT_SQL_MESSAGE: Final[str] = "Durable Object is not backed by SQL."
# What workerd 1.20261117.1 says (observed) when a new_classes object uses sql.exec /
# databaseSize, and storage.kv. (Its transactionSync() works on such a class.)
SQL_NOT_ENABLED_WORKERD_MESSAGE: Final[str] = (
    "SQL is not enabled for this Durable Object class. To enable it, change `new_classes` to "
    "`new_sqlite_classes` within the 'migrations' field in your wrangler.jsonc or wrangler.toml "
    "file. If using workerd directly,set `enableSql = true` in your workerd config for the "
    "class. Note that this change cannot be made after the class is already deployed to "
    "production."
)
KV_NOT_SQLITE_BACKED_MESSAGE: Final[str] = (
    "The storage.kv (synchronous KV) API is only available for SQLite-backed Durable Objects, "
    "but this object's namespace is not declared to use SQLite. You can use the older, "
    "asyncronous interface via methods of `storage` itself (e.g. `storage.get()`). "
    "Alternatively, to enable SQLite, change `new_classes` to `new_sqlite_classes` within the "
    "'migrations' field in your wrangler.jsonc or wrangler.toml file. If using workerd "
    "directly, set `enableSql = true` in your workerd config for the class. Note that this "
    "change cannot be made after the class is already deployed to production."
)
# ctx.storage.kv on a non-SQLite class goes through DurableObjectStorage::getSqliteKv(), which
# "throws if not SQLite-backed"; its exact text was NOT found (assumed to mirror the SQL one).

# Key / value limits for the KV API (edge-enforced ActorStorageLimits). Kept for reference:
# the pinned workerd (1.20261117.1) enforces none of them locally, on either kind of class
# (tests/conformance/cases/limits.json), so dohost does not either.
# CF: src/workerd/io/actor-storage.h, src/workerd/io/actor-storage.c++
MAX_KEY_SIZE: Final[int] = 2048  # bytes (UTF-8)
KEY_TOO_LARGE_TEMPLATE: Final[str] = (
    "Keys cannot be larger than 2048 bytes. A key of size {size} was provided."
)  # RangeError
# Legacy KV-backed value limit (128 KiB advertised, +34 bytes cushion for V8 headers).
ADVERTISED_MAX_VALUE_SIZE: Final[int] = 128 * 1024
ENFORCED_MAX_VALUE_SIZE: Final[int] = ADVERTISED_MAX_VALUE_SIZE + 34
VALUE_TOO_LARGE_TEMPLATE: Final[str] = (
    "Values cannot be larger than 131072 bytes. A value of size {size} was provided."
)  # RangeError
MAX_KEYS_PER_CALL: Final[int] = 128  # rpc::ActorStorage::MAX_KEYS (get/put/delete batches)
MAX_PAIRS_TEMPLATE: Final[str] = (
    "Maximum number of key value pairs is 128. {count} pairs were provided."
)  # RangeError
# SQLite-backed objects: values are bounded by SQLITE_LIMIT_LENGTH instead (2 MB
# documented); an over-limit value surfaces as SQLite's "string or blob too big" with
# ": SQLITE_TOOBIG" (SqliteKvRegulator rethrows SQLITE_TOOBIG to the user, other codes not).
# CF: src/workerd/util/sqlite-kv.c++ (SqliteKvRegulator::onError)
SQLITE_TOOBIG_MESSAGE: Final[str] = "string or blob too big: SQLITE_TOOBIG"

# ---------------------------------------------------------------------------------------
# 6. sqlite3_limit values (SqliteDatabase::setupSecurity)
# ---------------------------------------------------------------------------------------
# CF: src/workerd/util/sqlite.c++ (setupSecurity, current version)
# Older versions used LENGTH=1000000, EXPR_DEPTH=20, COMPOUND_SELECT=3, FUNCTION_ARG=32.
# The "4 MiB" figure in the issue was not found in any workerd version read.
SQLITE_LIMITS: Final[dict[str, int]] = {
    # CF: workerd 1.20261117.1 (observed): zeroblob(8388642) works, zeroblob(8388643)
    # is SQLITE_TOOBIG, i.e. 8 MiB + 34 (the source read earlier said 2,200,000).
    "SQLITE_LIMIT_LENGTH": 8 * 1024 * 1024 + 34,
    "SQLITE_LIMIT_SQL_LENGTH": 100_000,
    "SQLITE_LIMIT_COLUMN": 100,
    "SQLITE_LIMIT_EXPR_DEPTH": 100,
    "SQLITE_LIMIT_COMPOUND_SELECT": 5,
    "SQLITE_LIMIT_VDBE_OP": 25_000,  # SQLite ignores this limit in modern builds
    "SQLITE_LIMIT_FUNCTION_ARG": 127,
    "SQLITE_LIMIT_ATTACHED": 0,
    "SQLITE_LIMIT_LIKE_PATTERN_LENGTH": 50,
    "SQLITE_LIMIT_VARIABLE_NUMBER": 100,
    "SQLITE_LIMIT_TRIGGER_DEPTH": 10,
    "SQLITE_LIMIT_WORKER_THREADS": 0,
}
# Also set: SQLITE_DBCONFIG_DEFENSIVE = 1; process-wide soft heap 128 MiB, hard heap 512 MiB.
# CF: src/workerd/util/sqlite.c++ (setupSecurity)
SQLITE_DEFENSIVE: Final[bool] = True
SQLITE_SOFT_HEAP_LIMIT: Final[int] = 128 << 20
SQLITE_HARD_HEAP_LIMIT: Final[int] = 512 << 20

# ---------------------------------------------------------------------------------------
# 7. deleteAll() and the alarm; bookmarks
# ---------------------------------------------------------------------------------------
# CF: src/workerd/io/compatibility-date.capnp (deleteAllDeletesAlarm @161)
# When enabled, storage.deleteAll() also deletes the alarm; before it, deleteAll() preserved
# the alarm (ActorSqlite saves the alarm, resets the DB, then re-writes it).
DELETE_ALL_DELETES_ALARM_FLAG: Final[str] = "delete_all_deletes_alarm"
DELETE_ALL_PRESERVES_ALARM_FLAG: Final[str] = "delete_all_preserves_alarm"
DELETE_ALL_DELETES_ALARM_DATE: Final[str] = "2026-02-24"
# On SQLite-backed objects deleteAll() resets the WHOLE database file (SqliteDatabase::reset),
# dropping user SQL tables too; its return count is the number of _cf_KV rows beforehand.
# CF: src/workerd/util/sqlite-kv.c++ (SqliteKv::deleteAll)

# getCurrentBookmark() in local workerd: an ersatz counter n (stored at _cf_METADATA key 2,
# incremented on every call, starting at 0) rendered as
#   f"{n // 0xFFFFFFFF:08x}-{n % 0xFFFFFFFF:08x}-{0:08x}-" + "0" * 32
# (note the divisor is UINT32_MAX, not 2**32) — "a format matching what Cloudflare's
# production returns". waitForBookmark() resolves immediately in local workerd.
# CF: src/workerd/io/actor-sqlite.c++ (ActorSqlite::getCurrentBookmark)
BOOKMARK_DIVISOR: Final[int] = 0xFFFF_FFFF
BOOKMARK_TEMPLATE: Final[str] = "{hi:08x}-{lo:08x}-{zero:08x}-" + "0" * 32
BOOKMARK_PATTERN: Final[str] = r"^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$"
# getBookmarkForTime / onNextSessionRestoreBookmark are not implemented locally.
# CF: src/workerd/io/actor-cache.h ("default implementations throw JSG errors saying PITR is not
#     implemented"); text observed in third-party reproductions against local workerd.
PITR_NOT_IMPLEMENTED_MESSAGE: Final[str] = (
    "This Durable Object's storage back-end does not implement point-in-time recovery."
)

# ---------------------------------------------------------------------------------------
# 8. Internal tables
# ---------------------------------------------------------------------------------------
# CF: src/workerd/util/sqlite-kv.c++ (SqliteKv::ensureInitialized) — created lazily on first
# write; list() uses `ORDER BY key` / `ORDER BY key DESC` on TEXT with the default BINARY
# collation (i.e. byte order of UTF-8), begin inclusive (`key >= ?`), end exclusive (`key < ?`).
KV_TABLE: Final[str] = "_cf_KV"
KV_TABLE_SCHEMA: Final[str] = (
    "CREATE TABLE IF NOT EXISTS _cf_KV (\n"
    "  key TEXT PRIMARY KEY,\n"
    "  value BLOB\n"
    ") WITHOUT ROWID;"
)
# CF: src/workerd/util/sqlite-metadata.c++ / sqlite-metadata.h — created lazily; NOT WITHOUT ROWID.
METADATA_TABLE: Final[str] = "_cf_METADATA"
METADATA_TABLE_SCHEMA: Final[str] = (
    "CREATE TABLE IF NOT EXISTS _cf_METADATA (\n"
    "  key INTEGER PRIMARY KEY,\n"
    "  value BLOB\n"
    ");"
)
# Keys in _cf_METADATA (upsert: INSERT ... VALUES(k, ?) ON CONFLICT DO UPDATE SET value = excluded.value)
# CF: src/workerd/util/sqlite-metadata.h
METADATA_KEY_ALARM: Final[int] = 1  # INTEGER nanoseconds since Unix epoch; NULL = no alarm
METADATA_KEY_LOCAL_DEV_BOOKMARK: Final[int] = 2  # INTEGER counter for getCurrentBookmark()
METADATA_KEY_ACTOR_NAME: Final[int] = 3  # Durable Object name, when known (newer versions)
METADATA_KEYS: Final[dict[int, str]] = {
    METADATA_KEY_ALARM: "alarm",
    METADATA_KEY_LOCAL_DEV_BOOKMARK: "local_development_bookmark",
    METADATA_KEY_ACTOR_NAME: "actor_name",
}

# Values in _cf_KV are V8-serialized (version 15, with header 0xFF); a value whose first
# byte is not 0xFF is read as legacy version 13 without header.
# CF: src/workerd/api/actor-state.c++ (serializeV8Value / deserializeV8Value)
V8_SERIALIZER_VERSION: Final[int] = 15
V8_LEGACY_HEADERLESS_VERSION: Final[int] = 13

# Billing unit for KV read/write units. CF: src/workerd/api/actor-state.c++ (BILLING_UNIT)
BILLING_UNIT: Final[int] = 4096
