"""Notifications: an outbox in the journal's store, delivered exactly once per key.

Delivery goes to a mail-drop folder (one file per notice) and the log by default, to SMTP when
`AMIFLOW_SMTP_HOST` is set. The outbox row is locked while delivering; a mail-drop file is created
exclusively, so a retry after a crash between writing it and committing finds it and does not
write a second one.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import re
import smtplib
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import GIVE_UP, NOTIFICATION_FAILED, SEND, GiveUpNotices, SendNotices
from domain.calendar import PARIS
from domain.notices import Notice, linked
from journal.keys import DossierKeys, seal
from journal.logs import logger
from journal.store import JournalStore, OutboxEntry


class DeliveryFailed(Exception):
    """The channel (mail drop, SMTP) did not take a notice."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(failure_text(error))
        self.error = type(error).__name__


class NotificationActivities:
    """The outbox and its delivery. Built once per worker."""

    def __init__(self, store: JournalStore, keys: DossierKeys, mail_dir: Path, smtp_host: str = "",
                 public_url: str = "") -> None:
        self.store = store
        self.keys = keys
        self.mail_dir = mail_dir
        self.smtp_host = smtp_host
        self.public_url = public_url  # where people reach amiflow: each notice links to its dossier's page there

    @activity.defn(name=SEND)
    async def send(self, request: SendNotices) -> int:
        """Record and deliver each notice once; returns how many were delivered by this call. A notice
        that fails does not stop the others; the attempt then fails, with the last error, to be retried."""
        delivered, failures = 0, []
        for notice in (linked(n, self.public_url) for n in request.notices):
            deliver = functools.partial(self._deliver, notice)
            try:  # the store's own errors are not the notice's: they fail the attempt as they are
                if not await self.store.deliver_once(await self._entry(notice), deliver):
                    continue
            except DeliveryFailed as exc:  # the channel refused this one: the others still go
                failures.append(str(exc))
                logger(dossier_id=notice.dossier_id).warning(
                    "notification.attempt_failed", kind=notice.kind, recipient=notice.recipient,
                    channel=self._channel, error=exc.error,
                )
                continue
            delivered += 1
            logger(dossier_id=notice.dossier_id).info(
                "notification.delivered", kind=notice.kind, recipient=notice.recipient, channel=self._channel
            )
        if failures:
            raise ApplicationError(f"{len(failures)} notification(s) non délivrée(s) : {failures[-1]}",
                                   type=NOTIFICATION_FAILED)
        return delivered

    @activity.defn(name=GIVE_UP)
    async def give_up(self, request: GiveUpNotices) -> int:
        """Record each notice not delivered yet as a dead letter; returns how many."""
        given_up = 0
        for notice in (linked(n, self.public_url) for n in request.notices):
            if await self.store.fail_once(await self._entry(notice), request.attempts, failure_text(request.failure)):
                given_up += 1
                logger(dossier_id=notice.dossier_id).error(
                    "notification.given_up", kind=notice.kind, recipient=notice.recipient,
                    channel=self._channel, attempts=request.attempts,
                )
        return given_up

    async def _entry(self, notice: Notice) -> OutboxEntry:
        """The outbox row of a notice: ids in clear, subject and body sealed with the dossier's key."""
        key_id, key = await self.keys.current(notice.dossier_id)
        text = json.dumps({"subject": notice.subject, "body": notice.body}).encode()
        sealed = seal(key, text, f"amiflow:outbox:{notice.key}".encode())
        return OutboxEntry(key=notice.key, dossier_id=notice.dossier_id, kind=notice.kind,
                           recipient=notice.recipient, key_id=key_id, sealed=sealed, due=notice.due)

    @property
    def _channel(self) -> str:
        return "smtp" if self.smtp_host else "maildrop"

    async def _deliver(self, notice: Notice) -> str:
        try:
            if self.smtp_host:
                await asyncio.to_thread(self._smtp, notice)
            else:
                self._drop(notice)
        except Exception as exc:  # noqa: BLE001 - whatever the channel raises, this notice did not go
            raise DeliveryFailed(exc) from exc
        return self._channel

    def _drop(self, notice: Notice) -> None:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(notice.key.encode()).hexdigest()[:32] + ".eml"
        final = self.mail_dir / name
        if final.exists():
            return
        tmp = self.mail_dir / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(self._message(notice).as_bytes())
        try:
            os.link(tmp, final)  # fails if another attempt already delivered it
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)

    def _smtp(self, notice: Notice) -> None:
        host, _, port = self.smtp_host.partition(":")
        with smtplib.SMTP(host, int(port or 25), timeout=30) as smtp:
            smtp.send_message(self._message(notice))

    @staticmethod
    def _message(notice: Notice) -> Message:
        return message(notice, datetime.now(UTC))


# Headers stay on one line (the outbox key is read back exactly); the subject folds itself, in RFC 2047 words.
_UNFOLDED = compat32.clone(max_line_length=None)
_QUOTED = Charset("utf-8")
_QUOTED.body_encoding = QP  # the body stays readable as text in the .eml file (base64 would not)


def failure_text(error: BaseException | str) -> str:
    """What is kept of a delivery error: its type and message on one line, cut short. A channel's
    error names hosts and addresses, not the notice's text."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()[:300]


def _header(value: str) -> str:
    """A header value on one line: a line break in a name must not break (nor forge) a header."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value)


def message(notice: Notice, sent_at: datetime) -> Message:
    """The mail of a notice. The subject is one RFC 2047 word sequence whose spaces are inside the
    encoded text, so that no reader drops them; the Message-ID derives from the notice's key, so a
    retried delivery is recognisably the same mail."""
    mail = MIMEText(notice.body, "plain", _QUOTED, policy=_UNFOLDED)  # type: ignore[arg-type]  # a Charset is accepted
    # Recipients are actors (`holder:acme`); mapping them to mail addresses needs a directory
    # amiflow does not have yet, so the address is a placeholder and the actor travels in a header.
    recipient = _header(notice.recipient)
    local = re.sub(r"[^A-Za-z0-9._-]+", "-", recipient.replace(":", "."))
    mail["To"] = f'"{recipient}" <{local}@destinataires.invalid>'
    mail["X-Amiflow-Recipient"] = recipient
    mail["From"] = "amiflow <amiflow@localhost>"
    mail["Subject"] = Header(_header(notice.subject), "utf-8", header_name="Subject").encode()
    mail["Date"] = format_datetime(sent_at.astimezone(PARIS))
    mail["Message-ID"] = f"<{hashlib.sha256(notice.key.encode()).hexdigest()[:32]}@amiflow.localhost>"
    mail["X-Amiflow-Key"] = _header(notice.key)
    return mail
