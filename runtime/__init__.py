"""The dohost engine: gates, activations, group commit, eviction, alarms, ``open_runtime``."""

from __future__ import annotations

from ._activation import Activation as Activation
from ._activation import ActivationState as ActivationState
from ._activation import current_activation as current_activation
from ._activation import current_env as current_env
from ._alarms import MAX_ALARM_RETRIES as MAX_ALARM_RETRIES
from ._asyncio import TrioEventLoop as TrioEventLoop
from ._asyncio import get_loop as get_asyncio_loop
from ._alarms import retry_delay_s as retry_delay_s
from ._events import AlarmInfo as AlarmInfo
from ._gates import CommitTicket as CommitTicket
from ._http import DEFAULT_MAX_BODY_BYTES as DEFAULT_MAX_BODY_BYTES
from ._http import build_app as build_app
from ._http import serve_http as serve_http
from ._gates import InputGate as InputGate
from ._runtime import DEFAULT_IDLE_TIMEOUT as DEFAULT_IDLE_TIMEOUT
from ._runtime import Env as Env
from ._runtime import NamespaceSpec as NamespaceSpec
from ._runtime import ObjectStatistics as ObjectStatistics
from ._runtime import Runtime as Runtime
from ._runtime import RuntimeObserver as RuntimeObserver
from ._runtime import Placement as Placement
from ._runtime import default_spec as default_spec
from ._observe import Contents as Contents
from ._observe import EventRecord as EventRecord
from ._observe import RestorePoint as RestorePoint
from ._observe import QueryResult as QueryResult
from ._observe import ReadOnlyQueryError as ReadOnlyQueryError
from ._observe import TablePage as TablePage
from ._observe import jsonable as jsonable
from ._observe import ObjectView as ObjectView
from ._observe import Observer as Observer
from ._observe import SocketView as SocketView
from ._observe import iso_utc as iso_utc
from ._observe import note_alarm_offline as note_alarm_offline
from ._open import FILES_PER_OBJECT as FILES_PER_OBJECT
from ._open import default_max_resident as default_max_resident
from ._open import open_runtime as open_runtime
from ._open import RuntimeResource as RuntimeResource
from ._worker_calls import call_worker as call_worker
from ._scheduled import ScheduledController as ScheduledController
from ._scheduled import ScheduledResult as ScheduledResult
from ._scheduled import next_cron_ms as next_cron_ms
from ._scheduled import run_scheduled as run_scheduled
from ._scheduled import serve_crons as serve_crons
from ._telemetry import NULL_TELEMETRY as NULL_TELEMETRY
from ._telemetry import NullTelemetry as NullTelemetry
from ._telemetry import ObjectGauges as ObjectGauges
from ._telemetry import Telemetry as Telemetry
from ._telemetry import flush_storage_rows as flush_storage_rows
from ._telemetry import object_gauges as object_gauges
from .errors import DohostRuntimeError as DohostRuntimeError
from .errors import RuntimeConfigError as RuntimeConfigError

__all__ = [
    "Activation",
    "ActivationState",
    "current_activation",
    "current_env",
    "MAX_ALARM_RETRIES",
    "TrioEventLoop",
    "get_asyncio_loop",
    "retry_delay_s",
    "AlarmInfo",
    "CommitTicket",
    "DEFAULT_MAX_BODY_BYTES",
    "build_app",
    "serve_http",
    "InputGate",
    "DEFAULT_IDLE_TIMEOUT",
    "Env",
    "NamespaceSpec",
    "ObjectStatistics",
    "Runtime",
    "RuntimeObserver",
    "Placement",
    "default_spec",
    "Contents",
    "EventRecord",
    "RestorePoint",
    "QueryResult",
    "ReadOnlyQueryError",
    "TablePage",
    "jsonable",
    "ObjectView",
    "Observer",
    "SocketView",
    "iso_utc",
    "note_alarm_offline",
    "open_runtime",
    "RuntimeResource",
    "call_worker",
    "ScheduledController",
    "ScheduledResult",
    "next_cron_ms",
    "run_scheduled",
    "serve_crons",
    "NULL_TELEMETRY",
    "NullTelemetry",
    "ObjectGauges",
    "Telemetry",
    "flush_storage_rows",
    "object_gauges",
    "default_max_resident",
    "FILES_PER_OBJECT",
    "DohostRuntimeError",
    "RuntimeConfigError",
]
