"""Civil time of the Region: deadlines are Paris dates, instants are stored in UTC."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.errors import InvalidInput

PARIS = ZoneInfo("Europe/Paris")

# The years a date given by a person may fall in: a call, a due date, a deadline (Paris calendar).
FIRST_YEAR = 1900
LAST_YEAR = 2200


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


def date_refusal(day: date, where: str = "la date") -> str | None:
    """Why a date given by a person is out of the calendar's range (years 1900 to 2200), or None.
    French, lower case, no final stop."""
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        return (f"{where} {day.isoformat()} est hors de la plage admise "
                f"(années {FIRST_YEAR} à {LAST_YEAR})")
    return None


def instant_refusal(instant: datetime, where: str = "la date") -> str | None:
    """Why an instant given by a person is out of range (its Paris date, years 1900 to 2200), or None."""
    aware = require_aware(instant)
    try:
        day = aware.astimezone(PARIS).date()
    except OverflowError:
        day = aware.date()
    return date_refusal(day, where)


def paris_wall_clock(local: datetime) -> datetime:
    """A Paris wall-clock time (naive) as an aware instant — when that time exists once.

    Raises:
        InvalidInput: the time does not exist (skipped when clocks go forward, last Sunday of March)
            or exists twice (when they go back, last Sunday of October); the message says which
            and what to write instead, in French.
    """
    if local.tzinfo is not None:
        return local
    first = local.replace(tzinfo=PARIS, fold=0)
    second = local.replace(tzinfo=PARIS, fold=1)
    shown = local.isoformat(timespec="minutes")
    if first.utcoffset() != second.utcoffset():
        if first.astimezone(UTC).astimezone(PARIS).replace(tzinfo=None) != local:
            after = first.astimezone(UTC).astimezone(PARIS)
            raise InvalidInput(f"{shown} n’existe pas à Paris : ce jour-là, les horloges avancent "
                               f"(passage à l’heure d’été) ; écrivez une autre heure, par exemple "
                               f"{after.replace(tzinfo=None).isoformat(timespec='minutes')}.")
        offsets = [_offset(first), _offset(second)]
        raise InvalidInput(f"{shown} existe deux fois à Paris (les horloges reculent ce jour-là) : "
                           f"précisez le décalage, {shown}{offsets[0]} ou {shown}{offsets[1]}.")
    return first


def _offset(instant: datetime) -> str:
    text = instant.isoformat(timespec="minutes")
    return text[-6:]
