"""Every backend of each seam, built for the conformance suites.

A new backend is done when it is listed in its seam's table and the suite passes. A factory
takes the pytest request (so it can ask for server fixtures only when it runs) and a temp
dir, and yields an opened backend in a throwaway namespace (a temp file, a database, a key
prefix, a stream prefix).
"""

from __future__ import annotations

from tests.conformance.bus_backends import BUSES, BusFactory
from tests.conformance.hot_backends import HOTS, HotFactory
from tests.conformance.warm_backends import WARMS, WarmFactory

__all__ = ["BUSES", "HOTS", "WARMS", "BusFactory", "HotFactory", "WarmFactory"]
