"""The bindings error tree.

::

    WranglerCompatError
    └── BindingError                 a binding call failed the way Cloudflare's would
        ├── KvError                  ``KV <OP> failed: <status> <message>`` (workerd's form)
        ├── D1Error                  ``D1_ERROR: ...``, ``D1_TYPE_ERROR: ...``, ``D1_EXEC_ERROR: ...``
        ├── R2Error                  ``<action>: <message> (<v4 code>)``
        ├── ServiceBindingError      the bound Worker is not loaded, or lacks the entrypoint
        └── UnsupportedBindingError  (also AttributeError) a binding kind dohost does not provide

A failed call changes nothing: every check runs before the write.

On Cloudflare a binding's error reaches Python as ``pyodide.ffi.JsException``
(``except JsException`` is how the SDK's own tests catch a D1 syntax error),
so the KV, D1 and R2 errors are one too; its ``str()`` stays the bare message.
"""

from __future__ import annotations

from ..errors import WranglerCompatError
from ..platform._jsglobals import JsException

__all__ = ["BindingError", "KvError", "D1Error", "R2Error", "ServiceBindingError", "UnsupportedBindingError"]


class BindingError(WranglerCompatError):
    """Root of the errors binding calls raise."""


class _FromJs(JsException):
    """An error Cloudflare's JS binding raises: ``except JsException`` catches it."""

    __str__ = Exception.__str__  # the message as Cloudflare words it, without JS's "Error: "


class KvError(BindingError, _FromJs):
    """A Workers KV call was refused."""


class D1Error(BindingError, _FromJs):
    """A D1 call failed; the message starts with D1's error kind."""


class R2Error(BindingError, _FromJs):
    """An R2 call was refused; ``code`` is R2's v4 error code."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class ServiceBindingError(BindingError):
    """A service binding cannot reach its Worker."""


class UnsupportedBindingError(BindingError, AttributeError):
    """``env.<NAME>`` is a binding of a kind dohost does not provide."""
