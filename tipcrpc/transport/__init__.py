"""Transports: how tipcrpc moves datagrams between named sockets.

:mod:`tipcrpc.transport.base` defines the contract every transport implements;
``memory`` (in-process cluster), ``kernel`` (AF_TIPC) and ``user`` (a userspace TIPC node
over UDP) implement it.
"""
