"""What the codec server accepts: who may use it for what, and how much one request may carry. The
dossiers' own reading rules (`domain.reading.sight`, purpose DECODE) still decide each decode."""

from __future__ import annotations

from domain.access import Role
from domain.errors import InvalidCommand, NotAllowed
from domain.record import Record
from domain.state import is_dossier_id
from domain.throttle import Rate

# Roles that read a dossier whole (its staff, cleared auditors): the only ones a codec token serves.
DECODING_ROLES = frozenset({Role.STAFF, Role.AUDITOR})


class CodecLimits(Record):
    """Caps on one request and the rate limits of the codec server."""

    body_bytes: int = 8 * 1024 * 1024  # a workflow's payloads (Temporal keeps each under 2 MB)
    payloads: int = 500
    payload_bytes: int = 4 * 1024 * 1024
    dossiers: int = 20
    per_client: Rate = Rate(per_second=50.0, burst=300)  # the Web UI asks in bursts as a page renders
    failures_per_client: Rate = Rate(per_second=0.2, burst=10)  # wrong or missing tokens: guessing is slow
    per_token: Rate = Rate(per_second=50.0, burst=300)


class TooLarge(InvalidCommand):
    """A request over the codec server's caps."""

    code = "too_large"


def may_decode(role: Role) -> bool:
    """Whether a token in `role` serves at the codec server at all."""
    return role in DECODING_ROLES


def check_encode(role: Role) -> None:
    """`/encode` seals what a reader types in the Web UI: only for those who may read.

    Raises:
        NotAllowed: another role.
    """
    if not may_decode(role):
        raise NotAllowed(f"Le chiffrement par le serveur de décodage est réservé aux chargés de mission et aux "
                         f"auditeurs ; vous agissez comme {role.label} ({role.value}).")


def check_request(limits: CodecLimits, payload_sizes: list[int], dossiers: list[str]) -> None:
    """One request's payloads and the dossiers they name, against the caps.

    Raises:
        TooLarge: too many payloads or dossiers, or a payload too large.
        InvalidCommand: a dossier named in a form no dossier id has.
    """
    if len(payload_sizes) > limits.payloads:
        raise TooLarge(f"Au plus {limits.payloads} charges utiles par requête (reçu {len(payload_sizes)}).")
    if payload_sizes and max(payload_sizes) > limits.payload_bytes:
        raise TooLarge(f"Une charge utile dépasse {limits.payload_bytes // (1024 * 1024)} Mio.")
    if len(dossiers) > limits.dossiers:
        raise TooLarge(f"Au plus {limits.dossiers} dossiers par requête (reçu {len(dossiers)}) : demandez-les en "
                       "plusieurs fois.")
    bad = next((d for d in dossiers if len(d) > 200 or not d.isprintable() or not is_dossier_id(d)), None)
    if bad is not None:
        raise InvalidCommand("Une charge utile nomme un dossier dont l’identifiant n’a pas la forme attendue.")


def may_decode_without_dossier(person: str | None, operators: frozenset[str]) -> bool:
    """A payload that names no dossier (a call's workflow, the UI's own inputs) is sealed with a master
    key: only the operators of the server (named in its configuration) decode it, and it is logged."""
    return person is not None and person in operators
