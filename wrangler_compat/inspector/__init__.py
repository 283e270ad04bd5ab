"""The inspector web app and its JSON API (``/__dohost/inspector``, ``/__dohost/api``), and server discovery.

It reads the engine only through ``runtime.Observer``; see :mod:`._app`.
"""

from __future__ import annotations

from ._app import InspectorOptions as InspectorOptions
from ._app import inspector_routes as inspector_routes
from ._server_info import SERVER_INFO_FILE as SERVER_INFO_FILE
from ._server_info import ServerInfo as ServerInfo
from ._server_info import read_server_info as read_server_info
from ._server_info import server_info_file as server_info_file
from ._server_info import write_server_info as write_server_info

__all__ = [
    "InspectorOptions",
    "inspector_routes",
    "SERVER_INFO_FILE",
    "ServerInfo",
    "read_server_info",
    "server_info_file",
    "write_server_info",
]
