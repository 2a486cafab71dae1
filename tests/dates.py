"""Dates for the tests, derived from the clock when a test runs, so that no test expires on a date.

Every function takes `now` (an aware instant); tests pass `datetime.now(UTC)` at the call site, and
this module's own tests pass instants in winter, in summer, on the DST change days and years ahead.
Civil dates are Paris dates, computed with the tz database, independently of `domain.calendar`:

- a due date written alone (`--due YYYY-MM-DD`) means 00:00 Paris that day, shown with the offset
  of that day (+01:00 in winter, +02:00 in summer): `due(now, days)`;
- the shipped call files have fixed dates, past or soon past. `shifted_call_text(name, now)` is the
  text of a shipped file with every phase date moved so that `now` sits where the tests were designed
  to sit (see `SCENARIOS`, e.g. "phase 2 of the ressourceries call closes in 187 days"); everything
  else in the file (structure, texts, rules such as `years_after_opening`) is kept.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from domain.calls import Call, parse_call

PARIS = ZoneInfo("Europe/Paris")
CALLS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "calls"


# --- Paris civil time ---------------------------------------------------------------------------


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive instant: {now!r}")
    return now


def paris_today(now: datetime) -> date:
    """The Paris calendar date at `now`."""
    return _aware(now).astimezone(PARIS).date()


def paris_midnight(day: date) -> datetime:
    """00:00 Paris on `day`, as a UTC instant (what a date-only deadline means)."""
    return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)


def paris_days_before(instant: datetime, days: int) -> datetime:
    """The same Paris wall-clock time `days` calendar days earlier, as UTC (DST-aware)."""
    wall = _aware(instant).astimezone(PARIS).replace(tzinfo=None) - timedelta(days=days)
    return wall.replace(tzinfo=PARIS).astimezone(UTC)


def paris_iso(instant: datetime) -> str:
    """An instant as amiflow shows it: Paris time to the minute, with that instant's offset."""
    return _aware(instant).astimezone(PARIS).isoformat(timespec="minutes")


def add_years(day: date, years: int) -> date:
    """`day` plus whole years; 29 February becomes 28 February in a common year."""
    year = day.year + years
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


@dataclass(frozen=True)
class Due:
    """A date-only deadline: the day, what to type (`--due`), the instant, and how it is shown."""

    day: date

    @property
    def arg(self) -> str:
        """The day as written on a command line or in a file: YYYY-MM-DD."""
        return self.day.isoformat()

    @property
    def at(self) -> datetime:
        """00:00 Paris that day, in UTC."""
        return paris_midnight(self.day)

    @property
    def shown(self) -> str:
        """00:00 Paris that day with the offset of that day: YYYY-MM-DDT00:00+01:00 in winter, +02:00 in summer."""
        return paris_iso(self.at)


def due(now: datetime, days: int) -> Due:
    """The deadline `days` Paris calendar days after today (Paris) at `now`."""
    return Due(paris_today(now) + timedelta(days=days))


def dst_changes(year: int) -> tuple[date, date]:
    """The two days of `year` on which Paris changes its offset (spring, autumn), from the tz database."""
    found = []
    day = date(year, 1, 1)
    while day.year == year:
        after = day + timedelta(days=1)
        if datetime(day.year, day.month, day.day, tzinfo=PARIS).utcoffset() != \
                datetime(after.year, after.month, after.day, tzinfo=PARIS).utcoffset():
            found.append(day)
        day = after
    spring, autumn = found  # Europe/Paris changes twice a year
    return spring, autumn


# --- shifted copies of the shipped calls --------------------------------------------------------

OPENS, CLOSES = "opens", "closes"


@dataclass(frozen=True)
class Scenario:
    """Where the tests sit in a shipped call: each phase date written in the file, as a number of
    days from today's Paris date (negative: in the past)."""

    file: str
    days: Mapping[tuple[str, str], int]  # (phase id, OPENS or CLOSES) -> days from today
    why: str


SCENARIOS = {
    "hdf-pmcb-reemploi": Scenario("hdf-pmcb-reemploi.yaml", {
        ("unique", OPENS): -517,
    }, "The single phase opened 517 days ago and still closes three years after its opening (in about "
       "19 months), as the shipped file was on 30 November 2026: open for the whole of any test."),
    "hdf-ressourceries": Scenario("hdf-ressourceries.yaml", {
        ("phase-1", OPENS): -152,
        ("phase-1", CLOSES): -29,
        ("phase-2", CLOSES): 187,
    }, "Phase 1 closed 29 days ago, so phase 2 (opens after phase 1) is open today and closes at 00:00 "
       "Paris in 187 days: a draft started now meets its 30, 7 and 1-day reminders, then the closing. "
       "The shipped phase 1 closing (« 2026-02-31 ») does not exist; the copy has a real date."),
    "normandie-crec-2018": Scenario("normandie-crec-2018.yaml", {
        ("session-2018-09", OPENS): -29,
        ("session-2018-09", CLOSES): 282,
    }, "The deposit session opened 29 days ago and closes in 282 days; dossiers are reviewed after it."),
}


def shifted_dates(name: str, now: datetime) -> dict[tuple[str, str], date]:
    """The dates the shifted copy of call `name` writes, by (phase id, OPENS or CLOSES)."""
    today = paris_today(now)
    return {key: today + timedelta(days=days) for key, days in SCENARIOS[name].days.items()}


def shifted_call_text(name: str, now: datetime, call_id: str | None = None) -> str:
    """The text of the shipped call `name` with every phase date moved (see `SCENARIOS`), and its id
    replaced by `call_id` if given. A shipped date the scenario does not cover, or one it names that
    the file lacks, fails: the scenario must then be written again."""
    scenario = SCENARIOS[name]
    text = (CALLS_DIR / scenario.file).read_text(encoding="utf-8")
    written = {
        (phase["id"], edge): phase[edge]["date"]
        for phase in yaml.load(text, Loader=yaml.BaseLoader)["phases"]  # noqa: S506 - builds no objects
        for edge in (OPENS, CLOSES)
        if "date" in phase[edge]
    }
    assert written.keys() == scenario.days.keys(), (scenario.file, sorted(written), sorted(scenario.days))
    for key, new in shifted_dates(name, now).items():
        text = _replace_once(text, f"date: {written[key]}\n", f"date: {new.isoformat()}\n")
    if call_id is not None:
        text = _replace_once(text, f"\nid: {name}\n", f"\nid: {call_id}\n")
    return text


def write_shifted_call(folder: Path, name: str, now: datetime, call_id: str | None = None) -> Path:
    """The shifted copy written to `folder` (created if needed), as `ID.yaml`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{call_id or name}.yaml"
    path.write_text(shifted_call_text(name, now, call_id), encoding="utf-8")
    return path


def shifted_call(name: str, now: datetime, call_id: str | None = None) -> Call:
    """The shifted copy as a `Call`, parsed the way amiflow reads a call file."""
    data = yaml.load(shifted_call_text(name, now, call_id), Loader=yaml.BaseLoader)  # noqa: S506
    return parse_call(data, f"{call_id or name}.yaml (copie décalée)")


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one « {old.strip()} » in the shipped file"
    return text.replace(old, new)


# --- instants in a season -----------------------------------------------------------------------

WINTER, SUMMER = 1, 7  # months whose every day has Paris on +01:00, resp. +02:00


def next_in_month(now: datetime, month: int, day: int = 10, hour: int = 10) -> datetime:
    """The first `day` of `month` at `hour`:00 Paris strictly after `now`, as UTC: a clock-derived
    instant in winter (January) or summer (July), for what must read the same in both offsets."""
    year = paris_today(now).year
    while True:
        at = datetime(year, month, day, hour, tzinfo=PARIS).astimezone(UTC)
        if at > now:
            return at
        year += 1
