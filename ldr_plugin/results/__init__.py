"""Result records (this project's JSON files, a typed struct with one validator) and the atomic,
locked writes every result file goes through.

The names below are loaded on first use (PEP 562), so importing a submodule such as
``ldr_plugin.results.problems`` (which the sweep reader, the leaderboard's hot path, uses) does not
import the record machinery.
"""

from importlib import import_module

_HOMES = {
    "atomic_open": "io",
    "atomic_write_bytes": "io",
    "atomic_write_text": "io",
    "atomic_write_with": "io",
    "iter_record_paths": "io",
    "read_record": "io",
    "scan_records": "io",
    "write_record": "io",
    "MetricValue": "record",
    "Record": "record",
    "RecordError": "record",
    "expected_path": "record",
    "metric": "record",
    "new_record": "record",
    "record_filename": "record",
    "validate_record": "record",
}

__all__ = [
    "MetricValue",
    "Record",
    "RecordError",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "expected_path",
    "iter_record_paths",
    "metric",
    "new_record",
    "read_record",
    "record_filename",
    "scan_records",
    "validate_record",
    "write_record",
]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
