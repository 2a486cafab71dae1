"""Invitation links by e-mail, for reviewers and holders who have no account at an OpenID provider:
a single-use link with an expiry, bound to a person of the directory (`people.invite`), mailed to the
person's address the way notifications go (the mail-drop folder, or SMTP when `AMIFLOW_SMTP_HOST`
is set). The link is a secret: it is never logged."""

from __future__ import annotations

import asyncio
import hashlib
import os
import smtplib
from datetime import datetime
from email.charset import QP, Charset
from email.message import Message
from email.mime.text import MIMEText
from email.utils import format_datetime

from amiflow.bootstrap import Runtime
from amiflow.logs import logger
from amiflow.services import people
from amiflow.services.errors import NotFound
from domain.calendar import PARIS
from domain.errors import InvalidCommand
from domain.people import expiry

_QUOTED = Charset("utf-8")
_QUOTED.body_encoding = QP


async def send_invitation(rt: Runtime, name: str, days: int, now: datetime, site: str) -> str:
    """Make an invitation link for the person and mail it to them; returns the link (`site` is where
    people reach amiflow, e.g. `https://amiflow.region.example`).

    Raises:
        NotFound: nobody of that name. InvalidCommand: the person has no e-mail, days out of 1–30.
    """
    found = await people.person(rt, name)
    if found is None:
        raise NotFound(f"« {name} » n’est pas dans l’annuaire (amiflow people add).")
    if found.email is None:
        raise InvalidCommand(f"« {name} » n’a pas d’adresse e-mail dans l’annuaire (amiflow people add {name} "
                             "--email …).")
    secret = await people.invite(rt, name, days, now)
    link = f"{site.rstrip('/')}/auth/invitation/{secret}"
    until = expiry(now, days).astimezone(PARIS).strftime("%d/%m/%Y à %H:%M (heure de Paris)")
    body = (f"Bonjour,\n\nVous êtes invité(e) à vous connecter à amiflow, la plateforme des appels à manifestation "
            f"d’intérêt de la Région.\n\nOuvrez ce lien (il ne sert qu’une fois, jusqu’au {until}) :\n{link}\n\n"
            "Si vous n’attendiez pas cette invitation, ignorez ce message.\n")
    mail = MIMEText(body, "plain", _QUOTED)  # type: ignore[arg-type]  # a Charset is accepted
    mail["To"] = found.email
    mail["From"] = "amiflow <amiflow@localhost>"
    mail["Subject"] = "Invitation à amiflow"
    mail["Date"] = format_datetime(now.astimezone(PARIS))
    channel = await asyncio.to_thread(_deliver, rt, mail, hashlib.sha256(secret.encode()).hexdigest()[:32])
    logger(person=name).info("invitation.sent", channel=channel, days=days)
    return link


def _deliver(rt: Runtime, mail: Message, key: str) -> str:
    settings = rt.settings
    if settings.smtp_host:
        host, _, port = settings.smtp_host.partition(":")
        with smtplib.SMTP(host, int(port or 25), timeout=30) as smtp:
            smtp.send_message(mail)
        return "smtp"
    folder = settings.mail_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"invitation-{key}.eml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the link inside is a secret
    with os.fdopen(fd, "wb") as out:
        out.write(mail.as_bytes())
    return "maildrop"
