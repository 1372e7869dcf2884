"""Pure functions from a source row to a job message: dates, the 7-day rule, mapping, ids.

No I/O, no Kafka, no Faust: the pipeline calls `classify_row` once per row and sends the result.
"""

from jobstream.transform.dates import parse_collect_date, parse_publish_date
from jobstream.transform.ids import job_id, normalize_url
from jobstream.transform.mapping import FIELD_MAP
from jobstream.transform.outcome import Filtered, Kept, Outcome, Rejected, RowContext, classify_row
from jobstream.transform.window import cutoff, is_suspicious_future, within_window

__all__ = [
    "FIELD_MAP",
    "Filtered",
    "Kept",
    "Outcome",
    "Rejected",
    "RowContext",
    "classify_row",
    "cutoff",
    "is_suspicious_future",
    "job_id",
    "normalize_url",
    "parse_collect_date",
    "parse_publish_date",
    "within_window",
]
