"""asyncio for the code dohost hosts: an event loop and tasks over trio.

Python Workers run on an asyncio event loop (Pyodide's), and real Worker and
Durable Object code calls ``asyncio.sleep``, ``gather``, ``create_task``,
``wait_for``, locks, queues and the running loop. dohost's engine stays
trio. The bridge is a loop class of our own over trio's scheduler and clock
(:mod:`._loop`), with tasks whose steps the host drives inside trio tasks
(:mod:`._task`), owned by an activation or a runtime (:mod:`._owner`).

Why not trio-asyncio: it runs asyncio code as tasks of a separate asyncio
loop, and a coroutine there may only await asyncio things; trio code needs
``trio_as_aio`` wrappers. Object code awaits both at once — a stub call or
the host's own waits are trio, ``asyncio.sleep`` is asyncio — and dohost's
input gate must see each of its yields in the object's own trio task (the
trampoline of :func:`runtime._gates.gated`). A driver that forwards trio's
traps and waits on asyncio futures itself keeps both, with no wrapper in
user code and one scheduler.
"""

from __future__ import annotations

from ._loop import TrioEventLoop as TrioEventLoop
from ._loop import get_loop as get_loop
from ._owner import TaskOwner as TaskOwner
from ._owner import current_owner as current_owner
from ._owner import owner_var as owner_var
from ._task import Task as Task
from ._task import run_as_task as run_as_task

__all__ = ["TrioEventLoop", "get_loop", "TaskOwner", "current_owner", "owner_var", "Task", "run_as_task"]
