"""Peer queue libraries on the same Redis, for benchmarks/bench.py peers (run in benchmarks/.venv-peers)."""
