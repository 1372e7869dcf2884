"""The 7-day rule (seed §5.2): which publish and collect days are recent enough to keep.

Future days pass the rule (it has no upper bound): a clock a little ahead, or a source that
writes a wrong year, is no reason to lose a posting. Those more than a day ahead are flagged so
the caller can count them.
"""

from datetime import date, timedelta

__all__ = [
    "FUTURE_TOLERANCE_DAYS",
    "cutoff",
    "is_suspicious_future",
    "stale_reason",
    "within_window",
]

# Tomorrow is plausible (a source whose clock or zone runs ahead); the day after is not.
FUTURE_TOLERANCE_DAYS = 1


def cutoff(today: date, filter_days: int) -> date:
    """The oldest day kept: `today - filter_days` (for 7, today-7 is kept, today-8 is not)."""
    if filter_days < 0:
        raise ValueError(f"filter_days must be >= 0, got {filter_days}")
    return today - timedelta(days=filter_days)


def within_window(publish: date, collect: date, today: date, filter_days: int) -> bool:
    """True when both the publish day and the collect day are on or after the cutoff."""
    oldest = cutoff(today, filter_days)
    return publish >= oldest and collect >= oldest


def stale_reason(publish: date, collect: date, oldest: date) -> str:
    """Why a row falls outside the window that starts at `oldest`, naming each stale date.

    "" when neither date is stale.
    """
    stale = [
        f"{name} {day.isoformat()}"
        for name, day in (("publish_date", publish), ("collect_time", collect))
        if day < oldest
    ]
    if not stale:
        return ""
    return f"{' and '.join(stale)} before cutoff {oldest.isoformat()}"


def is_suspicious_future(day: date, today: date) -> bool:
    """True when `day` is more than FUTURE_TOLERANCE_DAYS after `today`."""
    return (day - today).days > FUTURE_TOLERANCE_DAYS
