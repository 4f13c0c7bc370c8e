"""Isolation benchmark: every cleanup strategy measured side by side, SQLite and PostgreSQL.

``python -m bench`` generates one CRUD test suite (every test writes through the API of a
12-table version of the shelter and reads back), runs it as real pytest subprocesses under
each isolation strategy (``bench/strategies/*.py`` are the conftests), times the test phase
from inside pytest, and writes ``results.json`` and ``isolation-benchmark.png``.
See ``python -m bench --help`` and ``bench/cli.py``.
"""
