"""Use cases of the codec server: decode sealed payloads for a person who may read them whole, seal
what the Web UI sends, and issue the personal tokens people give the Temporal Web UI or CLI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload

from amiflow import dossiers as gateway
from amiflow.bootstrap import Runtime
from amiflow.codec import ENCODING, EnvelopeCodec, dossier_of
from amiflow.logs import logger
from amiflow.services import people as people_service
from amiflow.services.errors import NotFound, ReadRefused
from amiflow.services.people import TokenIssued
from amiflow.services.principal import Principal
from domain import replay
from domain.codec_policy import CodecLimits, check_encode, check_request, may_decode, may_decode_without_dossier
from domain.errors import DomainError, InvalidCommand, NotAllowed
from domain.reading import LoggedRead, Purpose, sight
from journal.keys import DossierKeys, KeyProblem
from journal.store import JournalStore, ReadEntry

WITHOUT_DOSSIER = ("charges utiles sans dossier (scellées par une clé maîtresse : appels, saisies de l’interface) : "
                   "réservées aux opérateurs du serveur")


class Unreadable(InvalidCommand):
    """A payload that does not open: altered bytes, a wrong or missing key (said without naming keys)."""

    code = "unreadable_payload"


def dossiers_of(payloads: Sequence[Payload]) -> list[str]:
    """The dossiers a request's payloads name, in order.

    Raises:
        InvalidCommand: a dossier named in bytes that are not text.
    """
    try:
        return sorted({d for p in payloads if (d := dossier_of(p))})
    except UnicodeDecodeError:
        raise InvalidCommand("Une charge utile nomme un dossier dont l’identifiant n’a pas la forme attendue.") \
            from None


async def decode(store: JournalStore, keys: DossierKeys, who: Principal, payloads: list[Payload], now: datetime,
                 limits: CodecLimits | None = None, operators: frozenset[str] = frozenset()) -> list[Payload]:
    """Open the payloads if the person may read every dossier they belong to, whole (a payload can
    carry anything of the dossier, reviews included). A request is decoded whole or not at all, and
    every dossier it names is logged as such; a dossier unknown to the journal is refused unlogged
    (there is nothing to read), payloads naming no dossier are for the server's operators only.

    Raises:
        TooLarge: over the caps. NotFound: a dossier unknown to the journal. ReadRefused: a dossier
        (or a payload without dossier) this person may not decode. Unreadable: a payload that does
        not open.
    """
    dossiers = dossiers_of(payloads)
    check_request(limits or CodecLimits(), [p.ByteSize() for p in payloads], dossiers)
    for dossier in dossiers:
        if await store.dossier(dossier) is None:
            raise NotFound("Dossier inconnu du journal : rien n’est décodé.")
    keyless = sum(1 for p in payloads if p.metadata.get("encoding") == ENCODING and dossier_of(p) is None)
    if keyless and not may_decode_without_dossier(who.person, operators):
        logger(actor=str(who.actor)).warning("codec.refused_without_dossier", payloads=keyless, via=who.provenance)
        raise ReadRefused(f"Lecture refusée : {WITHOUT_DOSSIER}.")
    decisions = {d: await _decide(store, keys, d, who) for d in dossiers}
    refused = [d for d in dossiers if not decisions[d].granted]
    for dossier in dossiers:
        decision = decisions[dossier]
        if refused and decision.granted:
            reason = f"non décodé : la même requête portait sur {refused[0]}, refusé"
            decision = LoggedRead(what=decision.what, granted=False, reason=reason)
        entry = ReadEntry(dossier_id=dossier, at=now, actor=str(who.actor), what=decision.what, via=who.provenance,
                          granted=decision.granted, reason=decision.reason)
        await store.record_read(entry)
        logger(dossier_id=dossier, actor=str(who.actor)).info("read", what=decision.what, via=who.provenance,
                                                              granted=decision.granted)
    if refused:
        first = refused[0]
        raise ReadRefused(f"lecture refusée ({first}) : {decisions[first].reason}")
    if keyless:
        logger(actor=str(who.actor)).warning("codec.decoded_without_dossier", payloads=keyless, via=who.provenance)
    codec = EnvelopeCodec(keys)
    return [await _open(codec, p) for p in payloads]


async def _open(codec: EnvelopeCodec, payload: Payload) -> Payload:
    try:
        return await codec.open(payload)
    except (KeyProblem, KeyError, ValueError, DecodeError):
        dossier = dossier_of(payload)
        where = f"du dossier {dossier}" if dossier else "sans dossier"
        raise Unreadable(f"Charge utile {where} illisible : données altérées, clé erronée ou absente.") from None


async def _decide(store: JournalStore, keys: DossierKeys, dossier: str, who: Principal) -> LoggedRead:
    try:
        state = replay(await gateway.history(store, keys, dossier))
    except DomainError:  # unreadable (keys destroyed, altered): nobody's rights can be decided
        return LoggedRead(what="content", granted=False, reason="dossier illisible au journal")
    seen = sight(state, who.actor, Purpose.DECODE)
    return LoggedRead(what="content", granted=seen.content, reason=seen.reason)


async def encode(keys: DossierKeys, who: Principal, payloads: list[Payload],
                 limits: CodecLimits | None = None) -> list[Payload]:
    """Seal payloads (the UI's own inputs, e.g. a signal) with the active master key: only for those
    who may read.

    Raises:
        NotAllowed: a role that never reads a dossier whole. TooLarge: over the caps.
    """
    check_encode(who.actor.role)
    check_request(limits or CodecLimits(), [p.ByteSize() for p in payloads], [])
    return await EnvelopeCodec(keys).encode(payloads)


async def issue_token(rt: Runtime, who: Principal, days: int, now: datetime) -> TokenIssued:
    """A personal token for the codec server (the same tokens as the API's, revocable), for a person
    of the directory whose role reads dossiers whole.

    Raises:
        NotAllowed: a role the codec server never serves. NotFound, RoleNotGranted: see
        `people.issue_token`.
    """
    if not may_decode(who.actor.role):
        raise NotAllowed(f"Le serveur de décodage ne sert que les chargés de mission et les auditeurs (qui lisent un "
                         f"dossier en entier) ; {who.actor.role.label} ({who.actor.role.value}) lit ses dossiers "
                         "avec amiflow dossier show.")
    issued = await people_service.issue_token(rt, who.actor.name, days, now, role=who.actor.role, label="codec")
    logger(actor=str(who.actor)).info("codec.token_issued", token_id=issued.id, via=who.provenance)
    return issued


__all__ = ["NotFound", "Unreadable", "decode", "encode", "issue_token"]
