"""Civil time of the Region: deadlines are Paris dates, instants are stored in UTC."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def start_of_day(day: date) -> datetime:
    """The instant (UTC) at which `day` begins in Paris: "before 5 June" closes then."""
    return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)


def end_of_day(day: date) -> datetime:
    """The instant (UTC) at which `day` ends in Paris: the start of the next day (23 or 25 hours later on DST days)."""
    return start_of_day(day + timedelta(days=1))


def paris_date(instant: datetime) -> date:
    """The Paris calendar date of an aware instant."""
    return require_aware(instant).astimezone(PARIS).date()


def days_before(instant: datetime, days: int) -> datetime:
    """The same Paris wall-clock time `days` calendar days earlier, as UTC (DST-aware)."""
    local = require_aware(instant).astimezone(PARIS)
    # Aware arithmetic in one zone is wall-clock arithmetic; re-attach to let DST apply.
    earlier = (local.replace(tzinfo=None) - timedelta(days=days)).replace(tzinfo=PARIS)
    return earlier.astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months; the 31st becomes the month's last day when needed."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def add_years(day: date, years: int) -> date:
    """`day` plus whole years (29 February becomes 28 February in a common year)."""
    return add_months(day, 12 * years)


def require_aware(instant: datetime) -> datetime:
    """Refuse naive datetimes: an instant without an offset is ambiguous."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant sans fuseau horaire : {instant.isoformat()}")
    return instant


def to_utc(instant: datetime) -> datetime:
    """Normalise an aware instant to UTC."""
    return require_aware(instant).astimezone(UTC)


def show(instant: datetime) -> str:
    """An instant as staff read it: Paris time with its offset."""
    return require_aware(instant).astimezone(PARIS).isoformat(timespec="minutes")
