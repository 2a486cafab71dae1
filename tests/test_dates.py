"""The tests' date helper (tests/dates.py) at instants other than today: in winter, in summer, on
both DST change days of next year (found in the tz database, not written out), and in 2030."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from amiflow.catalogue import load_call
from tests import dates
from tests.dates import CLOSES, OPENS, PARIS

YEAR = datetime.now(UTC).year + 1
SPRING, AUTUMN = dates.dst_changes(YEAR)


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def summer_time(day: date) -> bool:
    """Whether 00:00 Paris on `day` is summer time: the clocks change at 02:00 or 03:00, so the
    spring change day still starts in winter time and the autumn one in summer time."""
    spring, autumn = dates.dst_changes(day.year)
    return spring < day <= autumn


NOWS = {
    "winter": paris(YEAR, 1, 15, 10),
    "winter, 23:30 UTC (already tomorrow in Paris)": datetime(YEAR, 2, 10, 23, 30, tzinfo=UTC),
    "summer": paris(YEAR, 7, 14, 16, 45),
    "summer, 22:30 UTC (already tomorrow in Paris)": datetime(YEAR, 8, 20, 22, 30, tzinfo=UTC),
    "spring DST day, before the change": paris(SPRING.year, SPRING.month, SPRING.day, 1, 30),
    "spring DST day, after the change": paris(SPRING.year, SPRING.month, SPRING.day, 12),
    "autumn DST day, first 02:30": datetime(AUTUMN.year, AUTUMN.month, AUTUMN.day, 0, 30, tzinfo=UTC),
    "autumn DST day, second 02:30": datetime(AUTUMN.year, AUTUMN.month, AUTUMN.day, 1, 30, tzinfo=UTC),
    "autumn DST day, 23:30 Paris": paris(AUTUMN.year, AUTUMN.month, AUTUMN.day, 23, 30),
    "2030": paris(2030, 6, 15, 9),
    "2030, New Year's Eve 23:30 UTC": datetime(2030, 12, 31, 23, 30, tzinfo=UTC),
}
AT = pytest.mark.parametrize("now", NOWS.values(), ids=NOWS.keys())


# --- the DST change days ------------------------------------------------------------------------


@pytest.mark.parametrize("year", [YEAR, 2030, 2031])
def test_dst_changes_are_the_last_sundays_of_march_and_october(year: int) -> None:
    def last_sunday(month: int) -> date:
        last = date(year, month, calendar.monthrange(year, month)[1])
        return last - timedelta(days=(last.weekday() - calendar.SUNDAY) % 7)

    spring, autumn = dates.dst_changes(year)
    assert (spring, autumn) == (last_sunday(3), last_sunday(10))
    def offset(day: date) -> timedelta | None:
        return paris(day.year, day.month, day.day).utcoffset()

    assert (offset(spring), offset(spring + timedelta(days=1))) == (timedelta(hours=1), timedelta(hours=2))
    assert (offset(autumn), offset(autumn + timedelta(days=1))) == (timedelta(hours=2), timedelta(hours=1))


# --- due dates ----------------------------------------------------------------------------------


@AT
@pytest.mark.parametrize("days", [0, 1, 10, 30, 45, 200])
def test_a_due_date_is_midnight_paris_with_the_offset_of_its_day(now: datetime, days: int) -> None:
    found = dates.due(now, days)
    today = now.astimezone(PARIS).date()
    assert found.day == today + timedelta(days=days)
    assert found.arg == found.day.isoformat()
    local = found.at.astimezone(PARIS)
    assert found.at.tzinfo is UTC and (local.date(), local.hour, local.minute) == (found.day, 0, 0)
    offset = "+02:00" if summer_time(found.day) else "+01:00"
    assert found.shown == f"{found.arg}T00:00{offset}"
    assert found.at.utcoffset() == timedelta(0) and local.utcoffset() == timedelta(hours=int(offset[2]))
    if days:
        assert found.at > now


def test_the_paris_day_not_the_utc_day() -> None:
    now = NOWS["winter, 23:30 UTC (already tomorrow in Paris)"]
    assert dates.paris_today(now) == now.date() + timedelta(days=1)
    assert dates.due(now, 10).day == now.date() + timedelta(days=11)
    assert dates.due(NOWS["2030, New Year's Eve 23:30 UTC"], 0).day == date(2031, 1, 1)


def test_due_dates_on_the_dst_change_days_themselves() -> None:
    spring = dates.due(NOWS["spring DST day, before the change"], 0)
    assert spring.day == SPRING and spring.shown.endswith("T00:00+01:00")
    assert dates.due(NOWS["spring DST day, after the change"], 1).shown.endswith("T00:00+02:00")
    for name in ("autumn DST day, first 02:30", "autumn DST day, second 02:30", "autumn DST day, 23:30 Paris"):
        assert dates.due(NOWS[name], 0).day == AUTUMN, name
        assert dates.due(NOWS[name], 0).shown.endswith("T00:00+02:00"), name
        assert dates.due(NOWS[name], 1).shown.endswith("T00:00+01:00"), name


def test_days_before_keeps_the_paris_wall_clock_across_the_changes() -> None:
    after_autumn = dates.Due(AUTUMN + timedelta(days=1)).at
    assert after_autumn - dates.paris_days_before(after_autumn, 1) == timedelta(hours=25)
    after_spring = dates.Due(SPRING + timedelta(days=1)).at
    assert after_spring - dates.paris_days_before(after_spring, 1) == timedelta(hours=23)
    assert dates.paris_days_before(after_spring, 30) == dates.Due(SPRING - timedelta(days=29)).at


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        dates.due(datetime(2030, 1, 1), 1)  # noqa: DTZ001 - the point of the test


# --- shifted copies of the shipped calls --------------------------------------------------------


@AT
def test_pmcb_copy_is_open_now_and_closes_three_years_after_its_opening(now: datetime) -> None:
    call = dates.shifted_call("hdf-pmcb-reemploi", now)
    (phase,) = call.phases
    opens = dates.paris_today(now) - timedelta(days=517)
    assert (phase.opens_at, phase.closes_at) == (dates.paris_midnight(opens),
                                                 dates.paris_midnight(dates.add_years(opens, 3)))
    assert phase.opens_at <= now < phase.closes_at
    assert timedelta(days=570) < phase.closes_at - now < timedelta(days=580)


@AT
def test_ressourceries_copy_has_phase_2_open_and_closing_in_187_days(now: datetime) -> None:
    call = dates.shifted_call("hdf-ressourceries", now)
    one, two = call.phases
    closing = dates.due(now, 187)
    assert one.closes_at == dates.due(now, -29).at == two.opens_at <= now < two.closes_at == closing.at
    assert one.opens_at == dates.due(now, -152).at
    assert dates.paris_iso(two.closes_at) == closing.shown
    offset = "+02:00" if summer_time(closing.day) else "+01:00"
    assert closing.shown.endswith(offset)


@AT
def test_crec_copy_has_its_session_open_and_closing_in_282_days(now: datetime) -> None:
    (session,) = dates.shifted_call("normandie-crec-2018", now).phases
    assert (session.opens_at, session.closes_at) == (dates.due(now, -29).at, dates.due(now, 282).at)


@AT
@pytest.mark.parametrize("name", list(dates.SCENARIOS))
def test_the_written_copy_loads_as_amiflow_reads_it_under_its_own_id(now: datetime, name: str, tmp_path: Path) -> None:
    path = dates.write_shifted_call(tmp_path / "calls", name, now, call_id=f"{name}-copie")
    assert path.name == f"{name}-copie.yaml"
    loaded = load_call(path)
    assert loaded.id == f"{name}-copie"
    assert loaded.phases == dates.shifted_call(name, now, call_id=f"{name}-copie").phases
    shipped = (dates.CALLS_DIR / dates.SCENARIOS[name].file).read_text(encoding="utf-8")
    changed = [(a, b) for a, b in zip(shipped.splitlines(), path.read_text().splitlines(), strict=True) if a != b]
    assert len(changed) == len(dates.SCENARIOS[name].days) + 1  # the dates and the id, nothing else
    assert all(a.strip().startswith(("date:", "id:")) for a, _ in changed)


def test_the_copies_are_the_dates_the_tests_were_designed_with() -> None:
    """On 30 November 2026 the shifted copies are what the tests wrote by hand then."""
    designed = paris(2026, 11, 30, 12)
    pmcb = (dates.CALLS_DIR / "hdf-pmcb-reemploi.yaml").read_text(encoding="utf-8")
    assert dates.shifted_call_text("hdf-pmcb-reemploi", designed) == pmcb
    ressourceries = dates.shifted_dates("hdf-ressourceries", designed)
    assert ressourceries == {("phase-1", OPENS): date(2026, 7, 1), ("phase-1", CLOSES): date(2026, 11, 1),
                             ("phase-2", CLOSES): date(2027, 6, 5)}
    crec = dates.shifted_dates("normandie-crec-2018", designed)
    assert crec == {("session-2018-09", OPENS): date(2026, 11, 1), ("session-2018-09", CLOSES): date(2027, 9, 8)}


@AT
def test_next_in_month_is_the_next_winter_or_summer_instant(now: datetime) -> None:
    for month, offset in ((dates.WINTER, "+01:00"), (dates.SUMMER, "+02:00")):
        at = dates.next_in_month(now, month)
        assert now < at <= now + timedelta(days=366)
        assert dates.paris_iso(at).endswith(f"-{month:02d}-10T10:00{offset}")
