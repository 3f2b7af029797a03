"""Result records (this project's JSON files) and the atomic writes every result file goes through."""

from ldr_plugin.results.atomic import atomic_open, atomic_write_bytes, atomic_write_text, atomic_write_with
from ldr_plugin.results.record import (
    RecordError,
    expected_path,
    iter_record_paths,
    metric,
    new_record,
    read_record,
    record_filename,
    validate_record,
    write_record,
)

__all__ = [
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
    "validate_record",
    "write_record",
]
