"""What goes wrong, and how it reaches the caller: every error is a ``tipcrpc.TipcRpcError``.

    python examples/errors.py

Shows, in order: ``MethodNotFound``, ``InvalidArguments`` (from the signature check and
raised by a handler on purpose), ``RemoteException`` (a handler raised; a built-in
``KeyError`` arrives as a ``KeyError`` that is also a ``RemoteException``), ``DeadlineExceeded``, ``ServiceUnreachable``, and
``CodecError`` for an argument msgpack cannot carry. See docs/errors.md.
"""

from __future__ import annotations

import asyncio

import tipcrpc

bank = tipcrpc.Service("example.bank")
balances = {"alice": 100}


@bank.method(idempotent=True)
def balance(account: str) -> int:
    return balances[account]  # KeyError for unknown accounts


@bank.method
def withdraw(account: str, amount: int) -> int:
    if amount <= 0:
        # RpcError subclasses raised by a handler keep their status and details.
        raise tipcrpc.InvalidArguments("amount must be positive", details={"amount": amount})
    balances[account] -= amount
    return balances[account]


@bank.method
async def audit(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "clean"


async def main() -> None:
    async with tipcrpc.serve(bank, transport="memory"), tipcrpc.connect("memory") as client:
        try:
            await client.call("example.bank", "deposit", "alice", 5)
        except tipcrpc.MethodNotFound as exc:
            print(f"MethodNotFound: {exc.message} details={exc.details}")

        try:
            await client.call(bank, "withdraw", "alice")  # missing 'amount'
        except tipcrpc.InvalidArguments as exc:
            print(f"InvalidArguments (signature): {exc.message}")

        try:
            await client.call(bank, "withdraw", "alice", -5)
        except tipcrpc.InvalidArguments as exc:
            print(f"InvalidArguments (raised by the handler): {exc.message} details={exc.details}")

        try:
            await client.call(bank, "balance", "mallory")
        except KeyError as exc:  # built-in exceptions arrive as themselves (docs/errors.md)
            assert isinstance(exc, tipcrpc.RemoteException)
            print(f"RemoteException (a KeyError): remote_type={exc.remote_type} args={exc.args}")
            assert exc.remote_type == "KeyError" and exc.status is tipcrpc.Status.APPLICATION_ERROR

        try:
            await client.options(timeout=0.1).call(bank, "audit", 30.0)
        except tipcrpc.DeadlineExceeded as exc:
            print(f"DeadlineExceeded: {exc} (also a TimeoutError: {isinstance(exc, TimeoutError)})")

        try:
            await client.options(timeout=1.0).call("example.nobody-serves-this", "anything")
        except tipcrpc.ServiceUnreachable as exc:
            print(f"ServiceUnreachable: {exc}")

        try:
            await client.call(bank, "balance", 1j)  # a complex number: no msgpack type, no extension
        except tipcrpc.CodecError as exc:
            print(f"CodecError (nothing was sent): {exc}")

        # One except clause for "the server said no" vs. "the call could not be carried out".
        for account in ("alice", "mallory"):
            try:
                print(f"balance of {account}: {await client.call(bank, 'balance', account)}")
            except tipcrpc.RpcError as exc:  # the server answered with a failure
                print(f"the server refused: {type(exc).__name__} (status {exc.status.name})")
            except tipcrpc.TipcRpcError as exc:  # transport, deadline, codec, closed...
                print(f"the call failed: {type(exc).__name__}: {exc}")
    print("errors example done")


if __name__ == "__main__":
    asyncio.run(main())
