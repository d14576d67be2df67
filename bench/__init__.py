"""Reproducible ingest benchmarks for sysmonstm (``make bench`` runs ``python -m bench``).

Each measurement is taken several times in one run, next to the ceilings it is compared
with, so that ratios never mix machines or days:

- ``sqlite_ceiling``: raw SQLite inserts in the warm tier's layout, and narrow rows for
  reference;
- ``grpc_sink`` + ``loadgen``: raw gRPC bidi streaming into a server that only parses and acks;
- ``pipeline``: the same load generator against a real ``sysmonstm aggregator`` process,
  with every sample checked in the SQLite file afterwards.

``report`` prints the table and writes ``docs/benchmarks.md``.
"""
