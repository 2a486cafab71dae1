"""Use cases of the codec server: decode sealed payloads for a person who may read them whole, and
issue the tokens people give the Temporal Web UI or CLI."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload

from amiflow import dossiers as gateway
from amiflow.codec import EnvelopeCodec, dossier_of
from amiflow.logs import logger
from amiflow.services.errors import ReadRefused
from amiflow.services.principal import Principal
from domain import replay
from domain.errors import DomainError
from domain.reading import LoggedRead, Purpose, sight
from journal.keys import DossierKeys
from journal.store import JournalStore, ReadEntry


class TokenView(BaseModel):
    """A codec token, shown once."""

    actor: str
    days: int
    token: str


async def decode(store: JournalStore, keys: DossierKeys, who: Principal, payloads: list[Payload],
                 now: datetime) -> list[Payload]:
    """Open the payloads if the person may read every dossier they belong to, whole (a payload can
    carry anything of the dossier, reviews included). A request is decoded whole or not at all, and
    every dossier it names is logged as such.

    Raises:
        ReadRefused: a dossier of the request may not be decoded for this person.
        KeyProblem: a key is missing or a payload was altered.
    """
    dossiers = sorted({d for p in payloads if (d := dossier_of(p))})
    decisions = {d: await _decide(store, keys, d, who) for d in dossiers}
    refused = [d for d in dossiers if not decisions[d].granted]
    for dossier in dossiers:
        decision = decisions[dossier]
        if refused and decision.granted:
            reason = f"non décodé : la même requête portait sur {refused[0]}, refusé"
            decision = LoggedRead(what=decision.what, granted=False, reason=reason)
        entry = ReadEntry(dossier_id=dossier, at=now, actor=str(who.actor), what=decision.what, via=who.via,
                          granted=decision.granted, reason=decision.reason)
        await store.record_read(entry)
        logger(dossier_id=dossier, actor=str(who.actor)).info("read", what=decision.what, via=who.via,
                                                              granted=decision.granted)
    if refused:
        first = refused[0]
        raise ReadRefused(f"lecture refusée ({first}) : {decisions[first].reason}")
    codec = EnvelopeCodec(keys)
    return [await codec.open(p) for p in payloads]


async def _decide(store: JournalStore, keys: DossierKeys, dossier: str, who: Principal) -> LoggedRead:
    try:
        state = replay(await gateway.history(store, keys, dossier))
    except DomainError as exc:  # not journaled yet, or unreadable: nobody's rights can be decided
        return LoggedRead(what="content", granted=False, reason=f"dossier illisible au journal ({exc.message})")
    seen = sight(state, who.actor, Purpose.DECODE)
    return LoggedRead(what="content", granted=seen.content, reason=seen.reason)


def issue_token(tokens_file: Path, who: Principal, days: int, now: datetime) -> TokenView:
    """A new codec token for the person, valid `days` days; only its digest is kept."""
    from amiflow.codec_server import Tokens

    return TokenView(actor=str(who.actor), days=days, token=Tokens(tokens_file).issue(who.actor, days, now))
