"""Conformance tests: the Transport contract (tipcrpc.testing.conformance) per transport.

Each transport gets one module here that subclasses ``TransportConformance`` and provides
a ``harness`` fixture; see the docstring of :mod:`tipcrpc.testing.conformance`.
"""
