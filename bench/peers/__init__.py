"""Peer RPC systems measured on the same machine: Pyro5, pyzmq (asyncio), grpcio (aio)."""
