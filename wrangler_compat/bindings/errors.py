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
"""

from __future__ import annotations

from ..errors import WranglerCompatError

__all__ = ["BindingError", "KvError", "D1Error", "R2Error", "ServiceBindingError", "UnsupportedBindingError"]


class BindingError(WranglerCompatError):
    """Root of the errors binding calls raise."""


class KvError(BindingError):
    """A Workers KV call was refused."""


class D1Error(BindingError):
    """A D1 call failed; the message starts with D1's error kind."""


class R2Error(BindingError):
    """An R2 call was refused; ``code`` is R2's v4 error code."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class ServiceBindingError(BindingError):
    """A service binding cannot reach its Worker."""


class UnsupportedBindingError(BindingError, AttributeError):
    """``env.<NAME>`` is a binding of a kind dohost does not provide."""
