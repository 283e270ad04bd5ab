"""``dohost do`` on a data directory no server holds (see :mod:`wrangler_compat.cli._do`).

Binding -> namespace folder and ID factory come from the wrangler file and
the data directory's namespace registry, exactly as ``dohost dev`` maps them
(no user code is imported, except by ``alarm run``, which must run it).
``bookmark``/``restore`` open the file as a host does (its history lives
beside it). Reads: the object's file read-only under a shared lock (its byte in the
folder's lock table, as hosts lock it), creating nothing but a missing lock
file of the table; names come from the file's ``user.dohost.name`` extended
attribute (``<id>.sqlite.name`` beside it where there is none). Writes: the file opened as a host opens it (exclusive
lock in the folder's lock table, Cloudflare's
authorizer for SQL), committed with fsync; the alarm index learns what the
file now says. A file some host holds is refused with exit code 3.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from objects import IdFactory
from persistence import History, LockTable, ObjectDatabase, ObjectLockedError, PersistenceError, inspect_file, ofd_locks_available
from runtime import iso_utc, note_alarm_offline

from ..config._config import WorkerConfig, load_config
from ..config._migrations import load_registry, namespace_dir
from ..config._project import resolve_config_path
from ._do import DoError
from ..errors import WranglerCompatError

__all__ = ["Offline", "resolve_project"]

T = TypeVar("T")


def resolve_project(config: Path | None, data_dir: Path | None) -> tuple[Path | None, Path]:
    """(wrangler file or None, data directory); the default data dir is dev's ``.dohost/state``."""
    try:
        path = resolve_config_path(config if config is not None else Path.cwd()).resolve()
    except WranglerCompatError:
        if config is not None or data_dir is None:
            raise
        path = None  # --data-dir alone: the server info may still name a server
    if data_dir is None:
        assert path is not None
        data_dir = path.parent / ".dohost" / "state"
    return path, data_dir.resolve()


class _Namespace:
    def __init__(self, binding: str, directory: Path, ids: IdFactory, sqlite: bool) -> None:
        self.binding, self.directory, self.ids, self.sqlite = binding, directory, ids, sqlite


class Offline:
    def __init__(self, config_path: Path | None, data_dir: Path, env: str | None) -> None:
        if config_path is None:
            raise DoError(f"no wrangler file here and no server holds {data_dir}: pass --config", 2)
        self.config_path, self.data_dir, self.env = config_path, data_dir, env
        self.config: WorkerConfig = load_config(config_path, env=env)
        registry = load_registry(data_dir)
        self._ns: dict[str, _Namespace] = {}
        seen: dict[str, str] = {}
        for b in self.config.durable_objects.bindings:
            try:
                info = registry.lookup(b.script_name or self.config.name, b.class_name)
            except WranglerCompatError:
                continue  # never served from this data directory: it has no objects
            canon = seen.setdefault(info.unique_key, b.name)
            self._ns[b.name] = _Namespace(canon, namespace_dir(data_dir, info), IdFactory(info.unique_key), info.sqlite)
        self._declared = [b.name for b in self.config.durable_objects.bindings]

    def _namespace(self, binding: str) -> _Namespace:
        if binding not in self._declared:
            raise DoError(f"no Durable Object binding named {binding!r} in {self.config_path}"
                          f" (bindings: {', '.join(self._declared) or 'none'})", 2)
        ns = self._ns.get(binding)
        if ns is None:
            raise DoError(f"{binding}: no objects in {self.data_dir} yet (the project never ran there)", 4)
        return ns

    def _target(self, binding: str, obj: str) -> tuple[_Namespace, Any, Path]:
        ns = self._namespace(binding)
        oid = None
        if len(obj) == 64 and all(c in "0123456789abcdef" for c in obj):
            with contextlib.suppress(Exception):
                oid = ns.ids.id_from_string(obj)
        if oid is None:
            oid = ns.ids.id_from_name(obj)
        return ns, oid, ns.directory / f"{oid.toString()}.sqlite"

    @contextlib.contextmanager
    def _snapshot(self, path: Path) -> Iterator[Any]:
        if not path.exists():
            raise DoError(f"no object storage at {path.name} (the object never wrote)", 4)
        try:
            with inspect_file.shared_lock(path):
                conn = inspect_file.open_snapshot(path)
                try:
                    yield conn
                finally:
                    conn.close()
        except ObjectLockedError as exc:
            raise DoError(f"{exc}; no server info in {self.data_dir} to go through it (use --to URL)", 3) from None

    def _write(self, ns: _Namespace, oid: Any, path: Path, fn: Callable[[ObjectDatabase], T]) -> T:
        ns.directory.mkdir(parents=True, exist_ok=True)
        locks = LockTable(ns.directory) if ofd_locks_available() else None
        try:
            db = ObjectDatabase(path, durability="full", sqlite_backed=ns.sqlite, locks=locks)
        except ObjectLockedError as exc:
            if locks is not None:
                locks.close()
            raise DoError(f"{exc}; no server info in {self.data_dir} to go through it (use --to URL)", 3) from None
        try:
            result = fn(db)
            if oid.name is not None and db.stored_name != oid.name:
                db.record_name(oid.name)
            if db.in_transaction:
                db.commit()
            note_alarm_offline(self.data_dir, ns.binding, oid.toString(), db.get_alarm())
            return result
        except PersistenceError as exc:
            raise DoError(str(exc), 1) from None
        finally:
            db.close()
            if locks is not None:
                locks.close()

    # ---------------------------------------------------------------- commands
    def objects(self, binding: str | None) -> list[dict[str, Any]]:
        out = []
        for b in [binding] if binding else [b for b in self._declared if b in self._ns]:
            ns = self._namespace(b)
            if ns.binding != b and binding is None:
                continue  # an alias of a namespace already listed
            for path in sorted(ns.directory.glob("*.sqlite")) if ns.directory.exists() else []:
                hex_id = path.stem
                name = alarm = None
                state = "evicted"
                try:
                    with inspect_file.shared_lock(path):
                        conn = inspect_file.open_snapshot(path)
                        try:
                            name, alarm = inspect_file.stored_name(conn, path), inspect_file.stored_alarm_ms(conn)
                        finally:
                            conn.close()
                except ObjectLockedError:
                    state, name = "locked", inspect_file.name_beside(path)
                out.append({"binding": b, "id": hex_id, "name": name, "state": state,
                            "storage_bytes": inspect_file.file_size(path), "alarm": iso_utc(alarm)})
        return out

    def sql(self, binding: str, obj: str, sql: str) -> dict[str, Any]:
        ns, oid, path = self._target(binding, obj)
        try:
            if path.exists():
                with self._snapshot(path) as conn:
                    result = inspect_file.run_query(conn, sql)
                return {"columns": result.columns, "rows": [[inspect_file.jsonable(v) for v in r] for r in result.rows],
                        "truncated": result.truncated, "wrote": False}
        except inspect_file.ReadOnlyQueryError:
            pass
        except Exception as exc:  # SQLite's complaint about the statement
            if isinstance(exc, DoError):
                raise
            raise DoError(f"{type(exc).__name__}: {exc}", 1) from None

        def run(db: ObjectDatabase) -> dict[str, Any]:
            cur = db.sql.exec(sql)
            rows = [[inspect_file.jsonable(v) for v in r] for r in cur.raw()]
            return {"columns": cur.columnNames, "rows": rows, "rows_written": cur.rowsWritten, "wrote": True}

        return self._write(ns, oid, path, run)

    def kv_list(self, binding: str, obj: str, prefix: str) -> list[dict[str, Any]]:
        _ns, _oid, path = self._target(binding, obj)
        with self._snapshot(path) as conn:
            return [{"key": k, "value": inspect_file.jsonable(v)} for k, v in inspect_file.kv_entries(conn, prefix=prefix)]

    def kv_get(self, binding: str, obj: str, key: str) -> Any:
        _ns, _oid, path = self._target(binding, obj)
        with self._snapshot(path) as conn:
            found = dict(inspect_file.kv_entries(conn, prefix=key, limit=1))
        if key not in found:
            raise DoError(f"no KV entry {key!r}", 4)
        return inspect_file.jsonable(found[key])

    def kv_put(self, binding: str, obj: str, key: str, value: Any) -> None:
        ns, oid, path = self._target(binding, obj)
        self._write(ns, oid, path, lambda db: db.kv.put(key, value))

    def kv_delete(self, binding: str, obj: str, key: str) -> bool:
        ns, oid, path = self._target(binding, obj)
        if not path.exists():
            return False
        return bool(self._write(ns, oid, path, lambda db: db.kv.delete(key)))

    def alarm_get(self, binding: str, obj: str) -> str | None:
        _ns, _oid, path = self._target(binding, obj)
        with self._snapshot(path) as conn:
            return iso_utc(inspect_file.stored_alarm_ms(conn))

    def alarm_delete(self, binding: str, obj: str) -> None:
        ns, oid, path = self._target(binding, obj)
        if path.exists():
            self._write(ns, oid, path, lambda db: db.set_alarm(None))

    def alarm_run(self, binding: str, obj: str) -> bool:
        """Runs the object's ``alarm()``: loads the project and hosts the object for the call."""
        import trio

        from runtime import Observer, open_runtime

        self._namespace(binding)

        async def go() -> bool:
            async with open_runtime(config=self.config_path, env_name=self.env, data_dir=self.data_dir,
                                    durability="full") as rt:
                observer = Observer(rt)
                return await observer.run_alarm(binding, observer.object_id(binding, obj))

        try:
            return trio.run(go)
        except ObjectLockedError as exc:
            raise DoError(str(exc), 3) from None

    def export(self, binding: str, obj: str) -> str:
        _ns, _oid, path = self._target(binding, obj)
        with self._snapshot(path) as conn:
            return inspect_file.dump_sql(conn)

    def bookmark(self, binding: str, obj: str, at_ms: float | None) -> str:
        ns, oid, path = self._target(binding, obj)
        if not path.exists():
            raise DoError(f"no object storage at {path.name} (the object never wrote)", 4)

        def get(db: ObjectDatabase) -> str:
            history = _history(db)
            return history.current_bookmark() if at_ms is None else history.bookmark_for_time(at_ms)

        return self._write(ns, oid, path, get)

    def restore(self, binding: str, obj: str, bookmark: str) -> str:
        ns, oid, path = self._target(binding, obj)
        if not path.exists():
            raise DoError(f"no object storage at {path.name} (the object never wrote)", 4)
        undo = self._write(ns, oid, path, lambda db: _history(db).schedule_restore(bookmark))
        # Opening the file applies the request now (as the object's next activation would).
        self._write(ns, oid, path, lambda db: None)
        return undo

    def import_(self, binding: str, obj: str, text: str) -> None:
        ns, oid, path = self._target(binding, obj)
        self._write(ns, oid, path, lambda db: inspect_file.restore_dump(db, text))


def _history(db: ObjectDatabase) -> History:
    if db.history is None:
        raise DoError("point-in-time recovery is off for this object (a KV-backed class)", 1)
    return db.history
