"""The ``dohost`` command: ``dev``, ``serve``, ``deploy``, ``rollback``, ``d1``, ``do`` (in ``_do``).

Exit codes: 0 success; 1 the command ran and failed (a refused deploy, an
exception importing the Worker, a port in use); 2 bad usage or a bad
wrangler file -- printed as one ``dohost: error: <file>: <where>: <what>``
line, never a traceback; 130 interrupted before serving.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser"]

EXAMPLES = """\
examples:
  dohost dev                              serve the project in this folder on http://127.0.0.1:8787,
                                          reloading when a source file changes
  dohost dev --config examples/chat --port 9000 --var GREETING:hello
  dohost dev -c main/ -c auth/            two Workers in one process (service bindings); main/ serves HTTP
  dohost d1 execute quotes --file db_init.sql    seed the local D1 database `dohost dev` serves
  dohost d1 migrations apply quotes             apply the D1 migrations of migrations_dir
  dohost serve --data-dir /var/lib/dohost                        a server on loopback
  DOHOST_TOKEN=s3cret dohost serve --data-dir /data --listen 0.0.0.0:8787
  dohost deploy --to http://server:8787 --token s3cret          upload this folder's Worker
  dohost deploy --name sync --to http://server:8787 --token s3cret    another Worker beside it (routes pick it)
  dohost serve --processes 2 --data-dir /data                   two serving processes sharing the objects
  dohost rollback --to http://server:8787 --token s3cret        back to the previous version
  dohost do list                                                 objects of this project and their state
  dohost do sql COUNTER global "SELECT * FROM c"                 SQL in one object (dohost do --help)

environment: DOHOST_TOKEN (deploy token), DOHOST_DATA_DIR and DOHOST_LISTEN (serve defaults).
"""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dohost")
    except Exception:  # running from a checkout that was never installed
        return "0+unknown"


def _var(text: str) -> tuple[str, str]:
    key, sep, value = text.partition(":")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY:VALUE, got {text!r}")
    return key, value


def _listen(text: str) -> tuple[str, int]:
    from ._front import parse_listen

    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of days >= 0, got {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of processes from 1 to 64, got {text!r}")
    return int(text)


def _bytes(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {text!r}")
    return int(text)


def _add_project(p: argparse.ArgumentParser, *, many: bool = False) -> None:
    if many:
        p.add_argument("--config", "-c", metavar="FILE", type=Path, action="append",
                       help="wrangler.toml / wrangler.jsonc, or a folder holding one (default: this folder);"
                            " repeat it to load more Workers into one process: the first serves HTTP")
    else:
        p.add_argument("--config", "-c", metavar="FILE", type=Path,
                       help="wrangler.toml / wrangler.jsonc, or a folder holding one (default: this folder)")
    p.add_argument("--env", "-e", metavar="ENV", help="use [env.ENV] of the wrangler file")


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--var", metavar="KEY:VALUE", type=_var, action="append", default=[],
                   help="a var for env (repeatable; overrides the wrangler file's vars)")
    p.add_argument("--max-body-bytes", metavar="N", type=_bytes, default=None,
                   help="refuse request bodies larger than N bytes with 413 (default: 100 MB, as Cloudflare)")
    p.add_argument("--otlp-endpoint", metavar="URL", default=None,
                   help="send OpenTelemetry traces over OTLP/HTTP to URL (default: $OTEL_EXPORTER_OTLP_ENDPOINT;"
                        " unset: no tracing)")
    p.add_argument("--idle-timeout", metavar="SECONDS", type=_positive, default=None,
                   help="evict an object from memory after SECONDS without events (default: 10, as workerd);"
                        " its storage, alarms and hibernatable WebSockets stay")
    # --- point-in-time recovery retention (issue #15) ---
    p.add_argument("--pitr-retention", metavar="DAYS", type=_non_negative, default=None,
                   help="keep point-in-time recovery history for DAYS (default: 30, as Cloudflare; 0: keep none)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dohost",
        description="Run Cloudflare-style Durable Objects locally (dev), self-hosted (serve), and deploy to it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dohost {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    dev = sub.add_parser("dev", help="serve a project locally, reloading on change",
                         description="Serve a project locally; reload on source change, keeping storage and alarms.",
                         epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_project(dev, many=True)
    dev.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8787, help="port to listen on; 0 picks a free one (default: 8787)")
    dev.add_argument("--persist-to", metavar="DIR", type=Path,
                     help="where object storage lives (default: .dohost/state in the project folder)")
    dev.add_argument("--inspector-writes", action="store_true",
                     help="let the inspector's query box run statements that write (dev only)")
    dev.add_argument("--crons", action="store_true",
                     help="fire the Worker's triggers.crons on schedule (off by default, as in wrangler dev;"
                          " GET /__scheduled?cron=... runs the scheduled handler once)")
    _add_runtime(dev)

    serve = sub.add_parser("serve", help="run a self-hosted server (JSON logs, deploy API)",
                           description="Run a server: no reload, fsync on commit, JSON logs, graceful SIGTERM.",
                           epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--data-dir", metavar="DIR", type=Path, default=os.environ.get("DOHOST_DATA_DIR"),
                       help="storage and deployed versions (env DOHOST_DATA_DIR)")
    serve.add_argument("--listen", metavar="HOST:PORT", type=_listen,
                       default=os.environ.get("DOHOST_LISTEN", "127.0.0.1:8787"),
                       help="address to listen on (env DOHOST_LISTEN; default 127.0.0.1:8787)")
    serve.add_argument("--processes", metavar="N", type=_count, default=None,
                       help="run N serving processes sharing the data directory, supervised (a dead one is"
                            " restarted); objects are split among them, calls forwarded to the owner")
    serve.add_argument("--public-metrics", action="store_true",
                       help="serve /__dohost/metrics without the token (default: only with Authorization: Bearer)")
    serve.add_argument("--token", default=os.environ.get("DOHOST_TOKEN") or None,
                       help="deploy token (env DOHOST_TOKEN); required to listen beyond loopback")
    cluster = serve.add_argument_group("cluster (several nodes on etcd; see docs/cluster.md)")
    cluster.add_argument("--cluster", metavar="URLS", default=None,
                         help="etcd client URLs, comma-separated (http://etcd1:2379,...): join a cluster")
    cluster.add_argument("--node-id", metavar="ID", default=None, help="this node's id, unique in the cluster")
    cluster.add_argument("--advertise", metavar="URL", default=None,
                         help="the URL other nodes reach this node at (default: http://LISTEN)")
    cluster.add_argument("--lease-ttl", metavar="SECONDS", type=int, default=3,
                         help="the node's etcd lease; a dead node's objects move after about this long (default 3)")
    _add_project(serve)
    _add_runtime(serve)

    for name, what in (("deploy", "upload this project to a running `dohost serve`"),
                       ("rollback", "make a `dohost serve` run its previous version again")):
        p = sub.add_parser(name, help=what, description=what[0].upper() + what[1:] + ".",
                           epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "deploy":
            _add_project(p)
        else:
            p.add_argument("--version", type=int, dest="target", metavar="N", help="a specific version")
        p.add_argument("--name", metavar="NAME", default=None,
                       help="the Worker's name on a server hosting several (its wrangler `name`);"
                            " default: the server's main Worker")
        p.add_argument("--to", required=True, metavar="URL", help="the server, e.g. http://host:8787")
        p.add_argument("--token", default=os.environ.get("DOHOST_TOKEN") or None,
                       help="deploy token (env DOHOST_TOKEN)")

    d1 = sub.add_parser("d1", help="run SQL or migrations on a local D1 database (wrangler d1 ... --local)",
                        description="Run SQL or migrations on the local D1 database `dohost dev` serves.")
    d1_sub = d1.add_subparsers(dest="d1_command", metavar="D1_COMMAND")
    d1_sub.required = True
    execute = d1_sub.add_parser("execute", help="run SQL from --file or --command in one transaction")
    migrations = d1_sub.add_parser("migrations", help="D1 migrations")
    migrations_sub = migrations.add_subparsers(dest="migrations_command", metavar="MIGRATIONS_COMMAND")
    migrations_sub.required = True
    apply = migrations_sub.add_parser("apply", help="apply the pending migrations of migrations_dir")
    for p in (execute, apply):
        p.add_argument("database", metavar="DATABASE", help="the database_name (or binding) in d1_databases")
        _add_project(p)
        p.add_argument("--persist-to", metavar="DIR", type=Path,
                       help="the state folder (default: .dohost/state in the project folder, as dohost dev)")
        p.add_argument("--local", action="store_true", help=argparse.SUPPRESS)  # wrangler's flag: always local
    source = execute.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", type=Path, help="a .sql file")
    source.add_argument("--command", dest="sql", help="SQL to run")

    from ._do import add_do_parser

    add_do_parser(sub)
    return parser


def _fail(message: str, code: int) -> int:
    print(f"dohost: error: {message}", file=sys.stderr)
    return code


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _config_path(args: argparse.Namespace) -> Path:
    from ..config._project import resolve_config_path

    config = args.config[0] if isinstance(args.config, list) else args.config
    return resolve_config_path(config if config is not None else Path.cwd()).resolve()


def _extra_config_paths(args: argparse.Namespace) -> tuple[Path, ...]:
    from ..config._project import resolve_config_path

    extra = args.config[1:] if isinstance(args.config, list) else []
    return tuple(resolve_config_path(c).resolve() for c in extra)


def _run(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    import trio

    from ._logging import configured_logging

    if args.command in ("deploy", "rollback"):
        from ._deploy import deploy_to, rollback_to

        if not args.token:
            return _fail(f"{args.command}: a token is required (--token or DOHOST_TOKEN)", 2)
        if args.command == "deploy":
            from ..config._config import load_config

            config = _config_path(args)
            load_config(config, env=args.env)  # a broken wrangler file fails here, with its line
            result = deploy_to(args.to, args.token, config, args.env, name=args.name)
            what = f"Worker {args.name} " if args.name else ""
            print(f"Deployed {what}version {result['version']} to {args.to}"
                  f" (previous: {result.get('previous')}; bindings: {', '.join(result.get('bindings', [])) or 'none'})")
        else:
            result = rollback_to(args.to, args.token, args.target, name=args.name)
            print(f"Rolled back {args.to} to version {result['version']} (was: {result.get('previous')})")
        return 0

    if args.command == "d1":
        return _d1(args)

    if args.command == "do":
        from ._do import run_do

        return run_do(args)

    kw: dict[str, Any] = {"vars": dict(args.var)}
    if args.max_body_bytes is not None:
        kw["max_body_bytes"] = args.max_body_bytes
    if args.idle_timeout is not None:
        kw["idle_timeout"] = args.idle_timeout
    if args.otlp_endpoint:
        kw["otlp_endpoint"] = args.otlp_endpoint
    if args.pitr_retention is not None:
        kw["pitr_retention_ms"] = args.pitr_retention * 86_400_000
    if args.command == "dev":
        from ._dev import DevOptions, run_dev

        config = _config_path(args)
        persist = args.persist_to if args.persist_to is not None else config.parent / ".dohost" / "state"
        opts = DevOptions(config=config, extra_configs=_extra_config_paths(args), env=args.env, ip=args.ip,
                          port=args.port, persist_to=persist.resolve(), inspector_writes=args.inspector_writes,
                          crons=args.crons, **kw)
        with configured_logging("dev"):
            trio.run(run_dev, opts)
        return 0

    from ._front import is_loopback
    from ._serve import ServeOptions, run_serve

    if args.data_dir is None:
        return _fail("serve: --data-dir is required (or set DOHOST_DATA_DIR)", 2)
    host, port = args.listen
    if not is_loopback(host) and not args.token:
        return _fail(
            f"serve: refusing to listen on {host} without a deploy token: anyone who can reach it could"
            " deploy code. Pass --token or set DOHOST_TOKEN (or listen on 127.0.0.1).",
            2,
        )
    if args.processes is not None and args.cluster is not None:
        # Each is a way of sharing a data directory between servers; not both at once (yet).
        return _fail("serve: --processes and --cluster cannot be combined; run one node per process instead", 2)
    if args.processes is not None:
        from ._processes import run_processes

        with configured_logging("json"):
            return trio.run(run_processes, args.processes, list(argv), host, port)
    from ._processes import CHILD_ENV

    slot = os.environ.get(CHILD_ENV)
    if slot is not None:
        import msgspec

        from ._serve import ProcessSlot

        kw["process"] = msgspec.json.decode(slot, type=ProcessSlot)
    serve_config = _config_path(args) if args.config is not None else None
    if args.cluster is None and (args.node_id or args.advertise):
        return _fail("serve: --node-id and --advertise only apply with --cluster URLS (the etcd endpoints)", 2)
    if args.cluster is not None:
        if args.advertise is not None and not args.advertise.startswith(("http://", "https://")):
            return _fail(f"serve: --advertise: expected an http:// URL other nodes can reach, got {args.advertise!r}", 2)
        if not args.node_id:
            return _fail("serve: --cluster needs --node-id ID (unique in the cluster)", 2)
        if args.lease_ttl < 2:
            return _fail(f"serve: --lease-ttl: expected at least 2 seconds, got {args.lease_ttl}", 2)
        from runtime.cluster import ClusterOptions

        endpoints = [u.strip() for u in args.cluster.split(",") if u.strip()]
        bad = [u for u in endpoints if not u.startswith(("http://", "https://"))]
        if not endpoints or bad:
            return _fail(f"serve: --cluster: expected comma-separated http:// URLs of etcd, got {args.cluster!r}", 2)
        kw["cluster"] = ClusterOptions(endpoints=endpoints, node_id=args.node_id,
                                       advertise=args.advertise or f"http://{host}:{port}", lease_ttl=args.lease_ttl)
    serve_opts = ServeOptions(data_dir=Path(args.data_dir).resolve(), host=host, port=port, token=args.token,
                              config=serve_config, env=args.env, public_metrics=args.public_metrics, **kw)
    from runtime.cluster import ClusterError

    with configured_logging("json"):
        try:
            trio.run(run_serve, serve_opts)
        except ClusterError as exc:
            return _fail(f"serve: {exc}", 1)
    return 0


def _d1(args: argparse.Namespace) -> int:
    import json

    from ..config._config import load_config
    from ..bindings._d1_admin import apply_d1_migrations, execute_in

    config_path = _config_path(args)
    config = load_config(config_path, env=args.env)
    state = (args.persist_to if args.persist_to is not None else config_path.parent / ".dohost" / "state").resolve()
    if args.d1_command == "execute":
        sql = args.file.read_text(encoding="utf-8") if args.file is not None else args.sql
        results = execute_in(config, args.database, sql, state)
        print(json.dumps(results, indent=2, default=str))
        return 0
    applied = apply_d1_migrations(config, args.database, state)
    print("\n".join(f"Applied {name}" for name in applied) if applied else "No migrations to apply.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from ._deploy import DeployError
    from ._logging import warnings_as_log_lines
    from ..bindings import BindingError
    from ..errors import WranglerCompatError

    try:
        with warnings_as_log_lines():
            return _run(args, argv)
    except BaseException as group:
        exc = _leaf(group)
        if isinstance(exc, (DeployError, BindingError)):  # the command ran and was refused
            return _fail(f"{args.command}: {exc}", 1)
        if isinstance(exc, WranglerCompatError):  # a bad wrangler file or migrations: say where
            return _fail(str(exc), 2)
        if isinstance(exc, KeyboardInterrupt):
            return 130
        if isinstance(exc, OSError) and exc.errno is not None and args.command in ("dev", "serve", "d1"):
            return _fail(f"{args.command}: {exc}", 1)
        if isinstance(exc, Exception):
            # The user's module raised on import (or a bug in dohost): the traceback is the message.
            traceback.print_exception(exc, file=sys.stderr)
            return _fail(f"{args.command}: {type(exc).__name__}: {exc}", 1)
        raise

