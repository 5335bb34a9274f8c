"""Exceptions across the wire (tipcrpc.rpc.remote_errors): allowlist, registry, fallbacks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipcrpc.codec import Codec
from tipcrpc.errors import (
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
from tipcrpc.rpc.remote_errors import (
    BUILTIN_REMOTE_EXCEPTIONS,
    ExceptionRegistry,
    exception_to_failure,
    failure_to_exception,
    remote_class,
    unencodable_result_failure,
)

CODEC = Codec()


def over_the_wire(exc: BaseException, registry: ExceptionRegistry, **kw: Any) -> TipcRpcError:
    """Server maps, the FAILURE body goes through the codec, the client maps back."""
    status, message, details = exception_to_failure(exc, registry=registry, **kw)
    status2, message2, details2 = CODEC.decode(CODEC.encode([int(status), message, details]))
    return failure_to_exception(Status(status2), message2, details2, registry=registry)


@pytest.fixture
def registry() -> ExceptionRegistry:
    return ExceptionRegistry()


class OutOfStock(Exception):
    def __init__(self, item: str, left: int) -> None:
        super().__init__(item, left)
        self.item, self.left = item, left


class Denied(PermissionError):
    pass


class Opaque(Exception):
    pass


class Wrapped(Exception):
    """Keeps only a formatted message in args: cannot be rebuilt from them."""

    def __init__(self, item: str, left: int) -> None:
        super().__init__(f"{item}: {left} left")


@pytest.mark.parametrize(
    "status,cls",
    [
        (Status.METHOD_NOT_FOUND, MethodNotFound),
        (Status.INVALID_ARGUMENTS, InvalidArguments),
        (Status.CANCELLED, RemoteCancelled),
        (Status.SERVER_BUSY, ServerBusy),
        (Status.SHUTTING_DOWN, ServerBusy),
        (Status.DEADLINE_EXCEEDED, DeadlineExceeded),
        (Status.PROTOCOL_ERROR, RemoteProtocolError),
        (Status.TOO_LARGE, FrameTooLarge),
        (Status.APPLICATION_ERROR, RemoteException),
        (Status.UNKNOWN, RemoteException),
    ],
)
def test_status_allowlist(status: Status, cls: type) -> None:
    exc = failure_to_exception(status, "msg", {"type": "os.system"})
    assert type(exc) is cls


def test_unknown_names_never_build_a_class() -> None:
    # A server naming a class this process does not allow gets RemoteException, args or not.
    for details in ({"type": "builtins.SystemExit", "message": "bad", "args": ["bad"]},
                    {"type": "os.system", "message": "bad", "args": ["rm -rf /"]},
                    {"type": "x.Y", "message": "bad", "base": "subprocess.Popen"},
                    {"type": "RuntimeError", "message": "bad", "args": ["bad"]}):
        exc = failure_to_exception(Status.APPLICATION_ERROR, "bad", details)
        assert type(exc) is RemoteException, details
        assert exc.remote_type == details["type"] and f"{details['type']}: bad" in str(exc)


def test_allowlisted_builtins_arrive_as_themselves(registry: ExceptionRegistry) -> None:
    exc = over_the_wire(KeyError("alice"), registry)
    assert isinstance(exc, KeyError) and isinstance(exc, RemoteException) and isinstance(exc, RpcError)
    assert type(exc).__name__ == "RemoteKeyError"
    assert exc.args == ("alice",) and str(exc) == "'alice'"
    assert exc.status is Status.APPLICATION_ERROR and exc.remote_type == "KeyError"
    assert exc.details["message"] == "'alice'" and exc.message == "'alice'"
    for original in (ValueError("bad", 3), TypeError("t"), IndexError(5), ZeroDivisionError("division by zero"),
                     NotImplementedError(), LookupError("l"), OverflowError("o")):
        got = over_the_wire(original, registry)
        assert isinstance(got, type(original)) and isinstance(got, RemoteException)
        assert got.args == original.args and str(got) == str(original)


def test_os_errors_keep_errno_and_filename(registry: ExceptionRegistry) -> None:
    got = over_the_wire(PermissionError(13, "Permission denied", "/etc/shadow"), registry)
    assert isinstance(got, PermissionError) and isinstance(got, RemoteException)
    assert (got.errno, got.strerror, got.filename) == (13, "Permission denied", "/etc/shadow")
    assert str(got) == "[Errno 13] Permission denied: '/etc/shadow'"
    got = over_the_wire(FileNotFoundError("no such thing"), registry)
    assert isinstance(got, FileNotFoundError) and got.args == ("no such thing",)


def test_left_out_builtins_stay_remote_exception(registry: ExceptionRegistry) -> None:
    for original in (TimeoutError("slow"), AttributeError("a"), OSError(5, "io"), RuntimeError("r"),
                     AssertionError("x"), ConnectionResetError("c")):
        got = over_the_wire(original, registry)
        assert type(got) is RemoteException, original
        assert got.remote_type == type(original).__name__
    assert TimeoutError not in BUILTIN_REMOTE_EXCEPTIONS and AttributeError not in BUILTIN_REMOTE_EXCEPTIONS


def test_registered_class_arrives_with_its_args_and_attributes(registry: ExceptionRegistry) -> None:
    registry.register(OutOfStock, "shop.OutOfStock")
    got = over_the_wire(OutOfStock("apple", 2), registry)
    assert isinstance(got, OutOfStock) and isinstance(got, RemoteException)
    assert got.args == ("apple", 2) and (got.item, got.left) == ("apple", 2)
    assert got.remote_type == "shop.OutOfStock"
    assert type(got) is remote_class(OutOfStock)  # one subclass per class, cached


def test_default_name_is_module_qualified(registry: ExceptionRegistry) -> None:
    registry.register(Opaque)
    status, _message, details = exception_to_failure(Opaque("o"), registry=registry)
    assert details["type"] == f"{__name__}.Opaque"
    assert registry.class_for(f"{__name__}.Opaque") is Opaque


def test_unregistered_subclass_arrives_as_its_nearest_known_base(registry: ExceptionRegistry) -> None:
    try:
        json.loads("{")
    except ValueError as exc:
        original = exc
    got = over_the_wire(original, registry)
    assert type(got).__name__ == "RemoteValueError" and isinstance(got, ValueError)
    assert got.remote_type == "json.decoder.JSONDecodeError" and str(got) == str(original)
    got = over_the_wire(Denied("no"), registry)  # a PermissionError subclass
    assert isinstance(got, PermissionError) and got.remote_type == f"{__name__}.Denied"


def test_unencodable_args_fall_back_to_remote_exception(registry: ExceptionRegistry) -> None:
    got = over_the_wire(ValueError(object()), registry)
    assert type(got) is RemoteException and got.remote_type == "ValueError"
    assert "args" not in got.details


def test_class_that_cannot_be_rebuilt_falls_back(registry: ExceptionRegistry) -> None:
    registry.register(Wrapped, "w")
    got = over_the_wire(Wrapped("apple", 0), registry)
    assert type(got) is RemoteException and got.remote_type == "w"
    assert got.details["message"] == "apple: 0 left" and str(got) == "w: apple: 0 left"


def test_client_without_the_registration_gets_remote_exception(registry: ExceptionRegistry) -> None:
    registry.register(OutOfStock, "shop.OutOfStock")
    status, message, details = exception_to_failure(OutOfStock("pear", 0), registry=registry)
    got = failure_to_exception(status, message, details, registry=ExceptionRegistry())
    assert type(got) is RemoteException and got.remote_type == "shop.OutOfStock"
    assert got.details["args"] == ["pear", 0]


def test_tracebacks_only_when_the_server_opts_in(registry: ExceptionRegistry) -> None:
    def handler() -> None:
        raise RuntimeError("deep down")

    try:
        handler()
    except RuntimeError as exc:
        original = exc
    assert "traceback" not in exception_to_failure(original, registry=registry)[2]
    got = over_the_wire(original, registry, send_traceback=True)
    assert isinstance(got, RemoteException)
    assert got.remote_traceback is not None
    assert "in handler" in got.remote_traceback and "RuntimeError: deep down" in got.remote_traceback
    if hasattr(got, "__notes__"):
        assert "deep down" in got.__notes__[0]
    plain = over_the_wire(KeyError("k"), registry)
    assert isinstance(plain, RemoteException) and plain.remote_traceback is None


def test_rpc_errors_and_codec_errors_keep_their_status() -> None:
    assert exception_to_failure(InvalidArguments("x", details=1)) == (Status.INVALID_ARGUMENTS, "x", 1)
    assert exception_to_failure(DeadlineExceeded("late"))[0] == Status.DEADLINE_EXCEEDED
    assert exception_to_failure(FrameTooLarge("big"))[0] == Status.TOO_LARGE
    # a CodecError the handler raised itself is an ordinary application error ...
    status, message, details = exception_to_failure(CodecError("inner"))
    assert status == Status.APPLICATION_ERROR and message == "inner"
    # ... and a result the server cannot encode says so (the serve table uses this one)
    status, message, details = unencodable_result_failure(CodecError("cannot encode set"))
    assert status == Status.APPLICATION_ERROR and message == "result cannot be encoded: cannot encode set"
    got = failure_to_exception(status, message, details)
    assert type(got) is RemoteException and got.remote_type == "tipcrpc.errors.CodecError"


def test_registration_rules(registry: ExceptionRegistry) -> None:
    registry.register(OutOfStock, "shop.OutOfStock")
    registry.register(OutOfStock, "shop.OutOfStock")  # same pair again: fine
    with pytest.raises(UsageError, match="already registered for OutOfStock"):
        registry.register(Opaque, "shop.OutOfStock")
    with pytest.raises(UsageError, match="already registered as remote exception"):
        registry.register(OutOfStock, "other")
    with pytest.raises(UsageError, match="already registered for KeyError"):
        registry.register(Opaque, "KeyError")  # built-in names are taken
    with pytest.raises(UsageError, match="tipcrpc error"):
        registry.register(InvalidArguments)
    with pytest.raises(TypeError):
        registry.register(int)  # type: ignore[arg-type]


def test_decorator_forms() -> None:
    import tipcrpc
    from tipcrpc.rpc.remote_errors import DEFAULT_EXCEPTIONS

    @tipcrpc.remote_exception
    class Plain(Exception):
        pass

    @tipcrpc.remote_exception("tests.unit.Named")
    class Named(Exception):
        pass

    assert DEFAULT_EXCEPTIONS.name_of(Plain) == f"{__name__}.test_decorator_forms.<locals>.Plain"
    assert DEFAULT_EXCEPTIONS.class_for("tests.unit.Named") is Named


# -- a hostile or buggy server: any FAILURE details give a tipcrpc error, nothing else ------

_names = st.sampled_from(["KeyError", "ValueError", "PermissionError", "UnicodeError", "shop.OutOfStock",
                          "builtins.SystemExit", "os.system", "", "Wrapped"])
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=5),
                  st.binary(max_size=5), st.floats())
_junk = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                          max_size=3), max_leaves=8)
_details = st.one_of(
    _junk,
    st.fixed_dictionaries({"type": _names | _junk}, optional={"message": _junk, "args": st.lists(_junk, max_size=6) | _junk,
                                                              "base": _names | _junk, "traceback": _junk}),
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.sampled_from(list(Status)), st.text(max_size=10), _details)
def test_any_failure_gives_a_tipcrpc_error(status: Status, message: str, details: Any) -> None:
    registry = ExceptionRegistry()
    registry.register(OutOfStock, "shop.OutOfStock")
    registry.register(Wrapped, "Wrapped")
    exc = failure_to_exception(status, message, details, registry=registry)
    assert isinstance(exc, TipcRpcError)
    if isinstance(exc, RemoteException):
        str(exc), exc.remote_type, exc.remote_traceback  # noqa: B018 - must not raise
