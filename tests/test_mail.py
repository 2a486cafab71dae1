"""The mail of a notice, read as a mail reader reads it: the subject's spaces survive RFC 2047, the
mail has a date (Paris) and a Message-ID derived from the notice, and no name can break a header."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from activities.notifications import message
from domain.notices import Notice

SUBJECTS = [
    "[x] Échéance prolongée",
    "[x] Complément demandé",
    "[hdf-pmcb-reemploi.siret-90000000000017-plateforme-lens-lievin] Complément demandé — pièces à fournir",
    "[call:hdf-pmcb-reemploi] Ouverture de « Phase unique — étude au fil de l’eau » (2025-07-01T00:00+02:00)",
]


def notice(subject: str, recipient: str = "holder:acme") -> Notice:
    return Notice(key="hdf.x|submitted|holder:acme", dossier_id="hdf.x", kind="submitted", recipient=recipient,
                  subject=subject, body="Votre dossier hdf.x a été déposé le 2026-11-30T09:00+01:00.", due=None)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_the_subject_reads_back_with_its_spaces(subject: str) -> None:
    raw = message(notice(subject), datetime(2026, 11, 30, 8, 0, tzinfo=UTC)).as_bytes()
    read = message_from_bytes(raw, policy=policy.default)
    assert read["Subject"] == subject
    assert read.get_content().strip() == "Votre dossier hdf.x a été déposé le 2026-11-30T09:00+01:00."


def test_a_mail_has_a_paris_date_and_a_message_id_of_its_notice() -> None:
    sent = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    first = message_from_bytes(message(notice(SUBJECTS[0]), sent).as_bytes(), policy=policy.default)
    again = message_from_bytes(message(notice(SUBJECTS[0]), sent).as_bytes(), policy=policy.default)
    assert first["Date"] == "Wed, 01 Jul 2026 12:00:00 +0200"
    assert first["Message-ID"] == again["Message-ID"] and first["Message-ID"].endswith("@amiflow.localhost>")


def test_a_line_break_in_a_name_cannot_break_or_forge_a_header() -> None:
    raw = message(notice("Dépôt", recipient="reviewer:rita\nBcc: tout-le-monde@exemple.fr"),
                  datetime(2026, 11, 30, tzinfo=UTC)).as_bytes()
    read = message_from_bytes(raw, policy=policy.default)
    assert read["Bcc"] is None and "\n" not in read["X-Amiflow-Recipient"]


def test_a_long_outbox_key_reads_back_exactly() -> None:
    key = "hdf-ressourceries.smtd-oublie|reminder_phase_closing_30d|holder:smtd-oublie|2021-06-04T22:00:00+00:00"
    long = notice(SUBJECTS[2]).model_copy(update={"key": key})
    read = message_from_bytes(message(long, datetime(2026, 11, 30, tzinfo=UTC)).as_bytes(), policy=policy.default)
    assert str(read["X-Amiflow-Key"]) == key
