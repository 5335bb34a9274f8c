"""Exceptions across the wire: which ones a caller gets back as themselves (layer L1, pure).

A handler's exception travels in a FAILURE frame as ``(status, message, details)``; this
module owns both directions:

* :func:`exception_to_failure` (server) — what to send for an exception a handler raised;
* :func:`failure_to_exception` (client) — what to raise for a FAILURE that arrived.

Nothing is ever pickled and no class is ever looked up by an arbitrary name: a FAILURE can
only rebuild a class that *this* process allows —

* the built-in exceptions of :data:`BUILTIN_REMOTE_EXCEPTIONS` (``KeyError``,
  ``ValueError``, ...), and
* application classes registered with the :func:`remote_exception` class decorator (on both
  sides, under the same stable name).

The rebuilt exception is an instance of a subclass of *both* the original class and
:class:`~tipcrpc.errors.RemoteException` (``RemoteKeyError(RemoteException, KeyError)``), so
``except KeyError`` and ``except tipcrpc.RemoteException`` both catch it, and ``status``,
``details``, ``remote_type`` and ``remote_traceback`` are there as on every remote error.
Its ``args`` are the handler's ``args``, carried by the codec; if they cannot be encoded, or
the class cannot be rebuilt from them (``cls(*args)`` raises), the caller gets a plain
:class:`~tipcrpc.errors.RemoteException` with the type name and message instead.

A handler's exception whose class is neither allowlisted nor registered, but *derives* from
one that is (``json.JSONDecodeError`` is a ``ValueError``), arrives as that nearest known
class built from the message alone.

Details of an application error (all keys but ``type`` and ``message`` optional)::

    {"type": "shop.OutOfStock",     # registered name, or the module-qualified class name
     "message": "str(exc)",
     "args": [...],                 # exact class known on the server side and args encodable
     "base": "ValueError",          # else: the nearest known base class, rebuilt from message
     "traceback": "Traceback ..."}  # only when the server opts in (send_tracebacks)
"""

from __future__ import annotations

import traceback as _traceback
from typing import Any, Callable, TypeVar, overload

from ..codec import Codec
from ..errors import (
    CodecError,
    DeadlineExceeded,
    FrameTooLarge,
    InvalidArguments,
    MethodNotFound,
    RemoteCancelled,
    RemoteException,
    RemoteProtocolError,
    RpcError,
    ServerBusy,
    Status,
    TipcRpcError,
    UsageError,
)

__all__ = [
    "BUILTIN_REMOTE_EXCEPTIONS",
    "DEFAULT_EXCEPTIONS",
    "ExceptionRegistry",
    "exception_to_failure",
    "failure_to_exception",
    "remote_class",
    "remote_exception",
    "unencodable_result_failure",
]

E = TypeVar("E", bound=type[BaseException])

#: Built-in exceptions that arrive as themselves. Chosen as the ones a caller catches to
#: handle a *value* problem. Left out on purpose: ``TimeoutError`` (the caller could not
#: tell it from its own deadline, :class:`~tipcrpc.errors.DeadlineExceeded` is one),
#: ``AttributeError`` (``getattr``/``hasattr`` fallbacks would swallow it), ``OSError`` and
#: ``ConnectionError`` (they would look like this process's own I/O failing), ``RuntimeError``
#: and ``AssertionError`` (bugs: a plain ``RemoteException`` says so).
BUILTIN_REMOTE_EXCEPTIONS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    LookupError,
    KeyError,
    IndexError,
    ArithmeticError,
    ZeroDivisionError,
    OverflowError,
    NotImplementedError,
    PermissionError,
    FileNotFoundError,
    FileExistsError,
    UnicodeError,
)

#: A traceback longer than this is cut at the front (its last frames are the useful ones).
MAX_TRACEBACK_CHARS = 16_000


class ExceptionRegistry:
    """Exception classes that travel by name, in both directions.

    One process-wide instance, :data:`DEFAULT_EXCEPTIONS`, is what :func:`remote_exception`
    fills and what the client and server use.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, type[BaseException]] = {}
        self._by_cls: dict[type[BaseException], str] = {}
        for cls in BUILTIN_REMOTE_EXCEPTIONS:
            self._by_name[cls.__name__] = cls
            self._by_cls[cls] = cls.__name__

    def register(self, cls: type[BaseException], name: str | None = None) -> None:
        """Let ``cls`` travel under ``name`` (default: its module-qualified name).

        Raises :class:`~tipcrpc.errors.UsageError` for a tipcrpc error class (those travel by
        status already), a name taken by another class, or a class already registered under
        another name. Registering the same pair again is a no-op.
        """
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise TypeError(f"remote_exception registers Exception subclasses, not {cls!r}")
        if issubclass(cls, TipcRpcError):
            raise UsageError(
                f"{cls.__qualname__} is a tipcrpc error: raise RpcError subclasses with status/details "
                f"instead of registering them"
            )
        if name is None:
            name = _qualified_name(cls)
        if not isinstance(name, str) or not name:
            raise UsageError(f"remote exception name must be a non-empty string, got {name!r}")
        taken = self._by_name.get(name)
        if taken is not None and taken is not cls:
            raise UsageError(f"remote exception name {name!r} is already registered for {taken.__qualname__}")
        other = self._by_cls.get(cls)
        if other is not None and other != name:
            raise UsageError(f"{cls.__qualname__} is already registered as remote exception {other!r}")
        self._by_name[name] = cls
        self._by_cls[cls] = name

    def name_of(self, cls: type[BaseException]) -> str | None:
        """The wire name of exactly ``cls``, or ``None`` if it does not travel."""
        return self._by_cls.get(cls)

    def nearest(self, cls: type[BaseException]) -> tuple[str, type[BaseException]] | None:
        """The closest base class of ``cls`` (itself excluded) that travels, with its name."""
        for base in cls.__mro__[1:]:
            name = self._by_cls.get(base)
            if name is not None:
                return name, base
        return None

    def class_for(self, name: str) -> type[BaseException] | None:
        """The class registered (or allowlisted) under ``name``, or ``None``."""
        return self._by_name.get(name)


#: The process-wide registry: the built-in allowlist plus every :func:`remote_exception`.
DEFAULT_EXCEPTIONS = ExceptionRegistry()


@overload
def remote_exception(cls: E, /) -> E: ...
@overload
def remote_exception(name: str | None = None, /) -> Callable[[E], E]: ...
def remote_exception(arg: E | str | None = None, /) -> E | Callable[[E], E]:
    """Class decorator: a handler raising this exception makes the caller raise it too.

    Use it in code imported by both the server and the client::

        @tipcrpc.remote_exception                      # name: "shop.errors.OutOfStock"
        class OutOfStock(Exception):
            def __init__(self, item: str, left: int) -> None:
                super().__init__(item, left)           # args travel; cls(*args) rebuilds it
                self.item, self.left = item, left

        @tipcrpc.remote_exception("shop.Denied")       # a stable name of your choosing
        class Denied(Exception): ...

    The default name is the module-qualified class name, which differs between processes
    when the class is defined in a script run as ``__main__``: give a name then. The caller
    receives an instance of a subclass of the class and of
    :class:`~tipcrpc.errors.RemoteException` (see :mod:`tipcrpc.rpc.remote_errors`).
    """
    if isinstance(arg, type):
        DEFAULT_EXCEPTIONS.register(arg)
        return arg

    def decorate(cls: E) -> E:
        DEFAULT_EXCEPTIONS.register(cls, arg)
        return cls

    return decorate


# -- server side: exception -> FAILURE ------------------------------------------------------


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", None) else f"{module}.{cls.__qualname__}"


def _wire_args(exc: BaseException) -> tuple[Any, ...]:
    # OSError keeps the filename out of args; send it so the caller's copy has it too.
    if isinstance(exc, OSError) and exc.filename is not None and len(exc.args) == 2:
        if exc.filename2 is not None:
            return (*exc.args, exc.filename, None, exc.filename2)
        return (*exc.args, exc.filename)
    return exc.args


def _format_traceback(exc: BaseException) -> str:
    text = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-MAX_TRACEBACK_CHARS:]
    return text


def exception_to_failure(
    exc: BaseException,
    *,
    send_traceback: bool = False,
    codec: Codec | None = None,
    registry: ExceptionRegistry | None = None,
) -> tuple[Status, str, Any]:
    """The ``(status, message, details)`` a server sends for an exception from a handler.

    * :class:`~tipcrpc.errors.RpcError` subclasses keep their status/details (so a handler
      can raise ``InvalidArguments`` itself);
    * :class:`~tipcrpc.errors.DeadlineExceeded` → DEADLINE_EXCEEDED,
      :class:`~tipcrpc.errors.FrameTooLarge` → TOO_LARGE, any other
      :class:`~tipcrpc.errors.CodecError` → APPLICATION_ERROR "result cannot be encoded";
    * anything else → APPLICATION_ERROR with details ``type``, ``message`` and, when the
      class travels (allowlisted or registered), ``args`` — checked with ``codec`` (default:
      the default registry's) so the FAILURE itself can always be encoded — or else ``base``.

    ``send_traceback`` adds the formatted traceback (the server's opt-in).
    """
    if isinstance(exc, RpcError):
        return exc.status, exc.message, exc.details
    if isinstance(exc, DeadlineExceeded):
        return Status.DEADLINE_EXCEEDED, str(exc) or "deadline exceeded", None
    if isinstance(exc, FrameTooLarge):
        return Status.TOO_LARGE, str(exc), {"type": _qualified_name(type(exc)), "message": str(exc)}
    reg = registry if registry is not None else DEFAULT_EXCEPTIONS
    message = str(exc)
    cls = type(exc)
    name = reg.name_of(cls)
    details: dict[str, Any] = {"type": name or _qualified_name(cls), "message": message}
    if name is not None:
        args = list(_wire_args(exc))
        try:
            (codec or _CODEC).encode(args)
        except CodecError:
            pass  # the caller gets RemoteException with type and message
        else:
            details["args"] = args
    else:
        base = reg.nearest(cls)
        if base is not None:
            details["base"] = base[0]
    if send_traceback:
        details["traceback"] = _format_traceback(exc)
    return Status.APPLICATION_ERROR, message, details


def unencodable_result_failure(exc: CodecError, what: str = "result") -> tuple[Status, str, Any]:
    """The FAILURE for a handler whose ``what`` (result, stream item) the codec refused.

    The handler *has run*; the caller gets :class:`~tipcrpc.errors.RemoteException` whose
    ``remote_type`` is ``"tipcrpc.errors.CodecError"`` and whose message says so.
    """
    message = f"{what} cannot be encoded: {exc}"
    return Status.APPLICATION_ERROR, message, {"type": _qualified_name(type(exc)), "message": message}


_CODEC = Codec()


# -- client side: FAILURE -> exception ------------------------------------------------------

# The status allowlist: these rebuild a specific tipcrpc class; every other status becomes
# RemoteException (or, for APPLICATION_ERROR, a travelling class, see _application_error).
_RPC_CLASSES: dict[Status, type[RpcError]] = {
    Status.METHOD_NOT_FOUND: MethodNotFound,
    Status.INVALID_ARGUMENTS: InvalidArguments,
    Status.CANCELLED: RemoteCancelled,
    Status.SERVER_BUSY: ServerBusy,
    Status.SHUTTING_DOWN: ServerBusy,
}

_REMOTE_CLASSES: dict[type[BaseException], type[RemoteException]] = {}


def remote_class(cls: type[BaseException]) -> type[RemoteException]:
    """The class a remote ``cls`` arrives as: ``Remote<Name>(RemoteException, cls)`` (cached).

    :class:`~tipcrpc.errors.RemoteException` comes first in the MRO so that ``cls.__init__``'s
    ``super().__init__(...)`` reaches ``cls``'s own bases, never ``RpcError.__init__``.
    """
    sub = _REMOTE_CLASSES.get(cls)
    if sub is None:
        sub = type(
            f"Remote{cls.__name__}",
            (RemoteException, cls),
            {"__module__": cls.__module__, "__qualname__": f"Remote{cls.__qualname__}", "__slots__": ()},
        )
        _REMOTE_CLASSES[cls] = sub
    return sub


def _rebuild(cls: type[BaseException], args: list[Any], status: Status, message: str, details: Any) -> RemoteException | None:
    try:
        sub = remote_class(cls)
        exc = cls.__new__(sub, *args)
        cls.__init__(exc, *args)
    except Exception:  # the class does not accept its own args (or layout): RemoteException
        return None
    assert isinstance(exc, RemoteException)
    # The class's own __init__ may have set attributes of these names: those win.
    attrs = vars(exc)
    attrs.setdefault("message", message)
    attrs.setdefault("details", details)
    if status != RemoteException.status:
        attrs.setdefault("status", status)
    return exc


def _application_error(status: Status, message: str, details: dict[str, Any], registry: ExceptionRegistry) -> RemoteException | None:
    name, args, base = details.get("type"), details.get("args"), details.get("base")
    if isinstance(name, str) and isinstance(args, list):
        cls = registry.class_for(name)
        if cls is not None:
            return _rebuild(cls, args, status, message, details)
    if isinstance(base, str):
        cls = registry.class_for(base)
        if cls is not None:
            return _rebuild(cls, [message], status, message, details)
    return None


def _add_traceback_note(exc: RemoteException) -> None:
    text = exc.remote_traceback
    if text and hasattr(exc, "add_note"):  # Python 3.11+: shown under the local traceback
        exc.add_note("remote traceback:\n" + text.rstrip())


def failure_to_exception(
    status: Status, message: str, details: Any, *, registry: ExceptionRegistry | None = None
) -> TipcRpcError:
    """The exception a client raises for a FAILURE ``(status, message, details)``."""
    if status == Status.DEADLINE_EXCEEDED:
        return DeadlineExceeded(message or "deadline exceeded on the server")
    if status == Status.PROTOCOL_ERROR:
        return RemoteProtocolError(f"server rejected the frame: {message}")
    if status == Status.TOO_LARGE:
        return FrameTooLarge(f"server refused the frame: {message}")
    cls = _RPC_CLASSES.get(status)
    if cls is not None:
        return cls(message, status=status, details=details)
    if isinstance(details, dict):
        if status == Status.APPLICATION_ERROR:
            rebuilt = _application_error(status, message, details, registry or DEFAULT_EXCEPTIONS)
            if rebuilt is not None:
                _add_traceback_note(rebuilt)
                return rebuilt
        name = details.get("type")
        text = (f"{name}: {message}" if message else name) if isinstance(name, str) else message
    else:
        text = message
    exc = RemoteException(text, status=status, details=details)
    _add_traceback_note(exc)
    return exc
