"""Service definitions: a named set of methods (layer L1, pure).

::

    calc = Service("demo.calc")          # type = service_type("demo.calc"), or type=18888

    @calc.method
    async def add(a: int, b: int) -> int: ...

    @calc.method(idempotent=True, importance="high")
    def ping() -> str: ...

    @calc.method
    async def count(n: int) -> AsyncIterator[int]:   # async generator: a streaming method
        for i in range(n):
            yield i

The decorator registers the function and returns it unchanged, so it stays callable
locally. Method metadata (kind, signature, idempotence, importance) is computed once here;
the server validates every call's arguments against the signature
(:meth:`MethodInfo.bind`, raising :class:`~tipcrpc.errors.InvalidArguments`).

Sync functions are run inline on the event loop by the server (they must not block);
coroutine functions and generators run as tasks.
"""

from __future__ import annotations

import builtins
import enum
import inspect
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, TypeVar, overload

from ..addr import RESERVED_TYPES, U32_MAX, Importance, service_type
from ..errors import AddressError, InvalidArguments, UsageError

__all__ = ["MethodKind", "MethodInfo", "Service", "importance_of", "lookup_service", "render_signature"]

F = TypeVar("F", bound=Callable[..., Any])
Api = TypeVar("Api")


class MethodKind(enum.Enum):
    """How the server runs a method."""

    SYNC = "sync"  #: plain function: run inline
    ASYNC = "async"  #: coroutine function: run as a task
    ASYNC_STREAM = "async_stream"  #: async generator function: items streamed
    SYNC_STREAM = "sync_stream"  #: generator function: items streamed

    @property
    def streaming(self) -> bool:
        return self in (MethodKind.ASYNC_STREAM, MethodKind.SYNC_STREAM)


def importance_of(value: Importance | str | int) -> Importance:
    """Parse ``"low"|"medium"|"high"|"critical"`` (any case), an int 0..3, or an Importance."""
    if isinstance(value, Importance):
        return value
    if isinstance(value, str):
        try:
            return Importance[value.upper()]
        except KeyError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return Importance(value)
        except ValueError:
            pass
    raise UsageError(f"importance must be one of low, medium, high, critical (or an Importance, or 0..3), got {value!r}")


def _kind_of(func: Callable[..., Any]) -> MethodKind:
    if inspect.isasyncgenfunction(func):
        return MethodKind.ASYNC_STREAM
    if inspect.isgeneratorfunction(func):
        return MethodKind.SYNC_STREAM
    if inspect.iscoroutinefunction(func):
        return MethodKind.ASYNC
    return MethodKind.SYNC


@dataclass(frozen=True, slots=True, eq=False)
class MethodInfo:
    """Everything the runtime needs to know about one method, computed once."""

    name: str
    func: Callable[..., Any]
    kind: MethodKind
    idempotent: bool
    importance: Importance
    signature: inspect.Signature
    doc: str | None
    #: How many positional arguments a call may pass without a check against the signature
    #: (a plain positional signature of exactly this many parameters, no defaults), else
    #: ``None``: the per-call path calls :meth:`bind` only when this does not match.
    arity: int | None = field(repr=False)
    #: ``kind.streaming``, precomputed for the per-call path.
    streaming: bool = field(init=False, repr=False)
    # The signature as text for error messages, rendered on first need (see signature_text).
    _text: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "streaming", self.kind.streaming)

    @property
    def signature_text(self) -> str:
        """The signature as a reader wrote it: ``(account: str, amount: int) -> None``, also
        under ``from __future__ import annotations`` (whose annotations are strings)."""
        text = self._text
        if text is None:
            text = render_signature(self.func, self.signature)
            object.__setattr__(self, "_text", text)
        return text

    def bind(self, args: list[Any] | tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Check that ``args``/``kwargs`` fit the signature; :class:`InvalidArguments` if not."""
        if not kwargs and self.arity is not None and len(args) == self.arity:
            return
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            sig = self.signature_text
            raise InvalidArguments(
                f"{self.name}{sig}: {exc}",
                details={"method": self.name, "signature": sig, "error": str(exc)},
            ) from None


class _Verbatim:
    """An annotation that prints as the text it holds (``repr`` without quotes)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def render_signature(func: Callable[..., Any], sig: inspect.Signature) -> str:
    """``str(sig)`` with string annotations evaluated (``account: str``, not ``'str'``).

    Annotations are strings under ``from __future__ import annotations``; they are
    evaluated in ``func``'s module when possible; when that fails (a name only imported
    under ``TYPE_CHECKING``, say) they are shown verbatim, still without quotes.
    """
    try:
        return str(inspect.signature(func, eval_str=True))
    except Exception:  # NameError, SyntaxError, ... from evaluating someone's annotations
        pass

    def plain(annotation: Any) -> Any:
        return _Verbatim(annotation) if isinstance(annotation, str) else annotation

    params = [p.replace(annotation=plain(p.annotation)) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=plain(sig.return_annotation)))


def _simple_arity(sig: inspect.Signature) -> int | None:
    n = 0
    for p in sig.parameters.values():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or p.default is not p.empty:
            return None
        n += 1
    return n


# Every Service defined in this process, by type, so a client given only a name or type can
# still learn a method's idempotence (last definition wins; entries vanish with the Service).
_REGISTRY: weakref.WeakValueDictionary[int, Service[Any]] = weakref.WeakValueDictionary()


def lookup_service(type: int) -> Service[Any] | None:
    """The :class:`Service` with this type defined in this process, if any."""
    return _REGISTRY.get(type)


class Service(Generic[Api]):
    """A named group of methods served under TIPC type ``type``.

    ``interface``: a class (typically a :class:`typing.Protocol`) describing the methods as a
    client sees them — ``async def`` for unary methods, plain ``def ... -> AsyncIterator[T]``
    for streaming ones. It types the stubs: ``client.stub(calc)`` is then the interface to mypy,
    so ``await client.stub(calc).add(1, 2)`` is an ``int``; at run time the stub checks the
    interface against the methods defined here (when there are any)::

        class CalcAPI(Protocol):
            async def add(self, a: int, b: int) -> int: ...

        calc = tipcrpc.Service("demo.calc", interface=CalcAPI)
    """

    @overload
    def __init__(self: Service[Any], name: str, *, type: int | None = None) -> None: ...

    @overload
    def __init__(self: Service[Api], name: str, *, type: int | None = None, interface: Callable[..., Api]) -> None: ...

    def __init__(self, name: str, *, type: int | None = None, interface: Callable[..., Any] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise AddressError(f"a service name must be a non-empty string, got {name!r}")
        if type is None:
            type = service_type(name)
        elif isinstance(type, bool) or not isinstance(type, int) or not RESERVED_TYPES <= type <= U32_MAX:
            raise AddressError(
                f"service type must be an integer in {RESERVED_TYPES}..{U32_MAX} "
                f"(types below {RESERVED_TYPES} are reserved by TIPC), got {type!r}"
            )
        if interface is not None and not isinstance(interface, builtins.type):
            raise TypeError(f"interface must be a class (a typing.Protocol, say), got {interface!r}")
        self.name = name
        self.type = type
        self.interface = interface
        self._methods: dict[str, MethodInfo] = {}
        _REGISTRY[type] = self

    @property
    def methods(self) -> Mapping[str, MethodInfo]:
        """The registered methods by name (read-only view)."""
        return dict(self._methods)

    def get(self, name: str) -> MethodInfo | None:
        """Method metadata, or ``None``."""
        return self._methods.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __repr__(self) -> str:
        return f"Service({self.name!r}, type={self.type}, methods={sorted(self._methods)})"

    def interface_methods(self) -> dict[str, bool]:
        """The methods of :attr:`interface` by name, each ``True`` if streaming (empty if none)."""
        if self.interface is None:
            return {}
        out = {}
        for attr in dir(self.interface):
            if attr.startswith("_"):
                continue
            fn = getattr(self.interface, attr)
            if callable(fn):
                out[attr] = not inspect.iscoroutinefunction(fn)
        return out

    def check_interface(self) -> None:
        """:class:`UsageError` if :attr:`interface` names a method this service does not
        define, or disagrees on whether it streams (only when methods are defined here)."""
        if self.interface is None or not self._methods:
            return
        problems = []
        for attr, streaming in self.interface_methods().items():
            info = self._methods.get(attr)
            if info is None:
                problems.append(f"{attr} is not a method of the service")
            elif info.streaming != streaming:
                want = "a plain def returning an AsyncIterator" if info.streaming else "an async def"
                problems.append(f"{attr} must be declared as {want} in the interface")
        if problems:
            raise UsageError(f"interface {self.interface.__qualname__} does not match service {self.name!r}: "
                             + "; ".join(problems))  # fmt: skip

    @overload
    def method(self, func: F, /) -> F: ...

    @overload
    def method(
        self,
        /,  # like the implementation's: self is positional-only there too (mypy checks it)
        *,
        idempotent: bool = False,
        importance: Importance | str | int = Importance.LOW,
        name: str | None = None,
    ) -> Callable[[F], F]: ...

    def method(
        self,
        func: F | None = None,
        /,
        *,
        idempotent: bool = False,
        importance: Importance | str | int = Importance.LOW,
        name: str | None = None,
    ) -> F | Callable[[F], F]:
        """Register a method; use bare (``@svc.method``) or with options.

        ``idempotent=True`` lets clients retry the call on another instance when the one
        holding it is lost; ``importance`` is the TIPC message importance of its messages
        (a larger kernel receive budget); ``name`` overrides the function's name.
        """
        imp = importance_of(importance)

        def register(f: F) -> F:
            if not callable(f):
                raise TypeError(f"@method needs a function, got {f!r}")
            mname = name if name is not None else getattr(f, "__name__", None)
            if not isinstance(mname, str) or not mname:
                raise UsageError(f"cannot derive a method name from {f!r}; pass name=")
            if mname in self._methods:
                raise UsageError(f"service {self.name!r} already has a method {mname!r}")
            sig = inspect.signature(f)
            self._methods[mname] = MethodInfo(
                name=mname,
                func=f,
                kind=_kind_of(f),
                idempotent=bool(idempotent),
                importance=imp,
                signature=sig,
                doc=inspect.getdoc(f),
                arity=_simple_arity(sig),
            )
            return f

        if func is not None:
            return register(func)
        return register
