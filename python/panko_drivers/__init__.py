"""panko_drivers: thin adapters that store other OpenStack systems' records
in panko's event store.

Each adapter is a module of this package (``panko_drivers.osprofiler`` is
OSProfiler's ``panko://`` driver).  Adapters hold no query logic: every
query is a SQL function of the panko extension, and an adapter only
translates arguments and results (see ``panko_drivers.connection``).
"""
