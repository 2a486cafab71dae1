"""Use cases of the directory of people: operators add and remove people and their roles; personal
access tokens (issued, listed, revoked, authenticated); sign-in with OpenID Connect and invitation
links. Every rule is `domain.people`'s; the directory is the journal store's."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError

from amiflow.bootstrap import Runtime
from amiflow.logs import logger
from amiflow.services.errors import NotFound, ServiceError, Unauthenticated
from amiflow.services.principal import Principal
from domain.access import Actor, Role
from domain.calls import Call
from domain.errors import InvalidCommand, NotAllowed
from domain.people import (
    INVITATION_DAYS_MAX,
    NAME_PATTERN,
    TOKEN_DAYS_MAX,
    Grant,
    Person,
    RoleNotGranted,
    check_days,
    check_name,
    check_operator_claim,
    expiry,
    holder_name,
    may_revoke,
    merge_grants,
    normal_email,
    token_role,
    token_usable,
)
from journal.store import InvitationRow, PersonConflict, PersonRow, TokenRow

TOKEN_MAX_LENGTH = 200  # what token_urlsafe(32) gives is 43 characters: anything far longer is not ours
# When a person holding several roles signs in without saying which, they act in the first they hold.
ROLE_ORDER = (Role.STAFF, Role.COMMITTEE, Role.AUDITOR, Role.REVIEWER, Role.HOLDER)


class TokenIssued(BaseModel):
    """A new personal token: the secret is shown this once, never stored."""

    id: str
    token: str
    expires_at: datetime


class TokenView(BaseModel):
    """A token as listed: never its secret nor its digest."""

    id: str
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    label: str | None
    state: str  # active, expired, revoked


def digest(secret: str) -> str:
    """What the store keeps of a token or an invitation: the SHA-256 of its secret, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def to_person(row: PersonRow) -> Person:
    """The domain's person from the store's row."""
    return Person(name=row.name, email=row.email, grants=tuple(Grant(role=Role(r), call_id=c) for r, c in row.grants),
                  issuer=row.issuer, subject=row.subject, siret=row.siret)


def to_row(person: Person) -> PersonRow:
    """The store's row of a person."""
    return PersonRow(name=person.name, email=person.email,
                     grants=tuple((g.role.value, g.call_id) for g in person.grants),
                     issuer=person.issuer, subject=person.subject, siret=person.siret)


async def person(rt: Runtime, name: str) -> Person | None:
    """The person of that name, if the directory has one."""
    row = await rt.store.person(name)
    return to_person(row) if row is not None else None


async def _put(rt: Runtime, person: Person) -> None:
    try:
        await rt.store.put_person(to_row(person))
    except PersonConflict as exc:
        raise ServiceError(f"Refusé : {exc.message}.", "person_conflict") from None


def _grants(role: Role, calls: Iterable[str]) -> tuple[Grant, ...]:
    try:
        return tuple(Grant(role=role, call_id=c) for c in calls) or (Grant(role=role),)
    except ValidationError as exc:
        raise InvalidCommand(f"Rôle {role.value} : {_first(exc)}.") from None


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = str(error.get("msg", "valeur invalide")).removeprefix("Value error, ")
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where} : {message}" if where else message


async def add(rt: Runtime, name: str, grants: Iterable[Grant], email: str | None = None, *,
              siret: str | None = None) -> Person:
    """Add a person, or give one already there more roles (and a new e-mail, if given).

    Raises:
        InvalidCommand: an unsafe name, a bad e-mail or SIRET, a staff or committee role without a call.
        ServiceError(person_conflict): the e-mail is another person's.
    """
    check_name(name)
    found = await person(rt, name)
    try:
        base = found or Person(name=name)
        updated = merge_grants(base, tuple(grants))
        changes: dict[str, object] = {}
        if email is not None:
            changes["email"] = normal_email(email)
        if siret is not None:
            changes["siret"] = siret
        checked = Person.model_validate({**updated.model_dump(), **changes})
    except ValidationError as exc:
        raise InvalidCommand(f"« {name} » : {_first(exc)}.") from None
    await _put(rt, checked)
    logger(person=name).info("people.added", grants=[str(g) for g in checked.grants])
    return checked


def parse_role(text: str) -> Role:
    """A person's role, as typed.

    Raises:
        InvalidCommand: not a role a person holds.
    """
    try:
        role = Role(text)
    except ValueError:
        role = Role.SYSTEM
    if role is Role.SYSTEM:
        roles = ", ".join(r.value for r in Role if r is not Role.SYSTEM)
        raise InvalidCommand(f"« {text[:40]} » n’est pas un rôle de personne (rôles : {roles}).")
    return role


def role_grants(role: str, calls: Iterable[str]) -> tuple[Grant, ...]:
    """The grants `--role ROLE [--call CALL]…` asks for.

    Raises:
        InvalidCommand: an unknown role, or a call missing where the role needs one.
    """
    return _grants(parse_role(role), calls)


async def listing(rt: Runtime) -> list[Person]:
    """Every person of the directory, by name."""
    return [to_person(r) for r in await rt.store.people()]


async def remove(rt: Runtime, name: str) -> None:
    """Remove a person, with their tokens and invitations.

    Raises:
        NotFound: nobody of that name.
    """
    if not await rt.store.remove_person(name):
        raise NotFound(f"« {name} » n’est pas dans l’annuaire.")
    logger(person=name).info("people.removed")


async def seed(rt: Runtime, calls: Iterable[Call]) -> list[str]:
    """Put the call files' `staff:` and `committee:` lists in the directory (idempotent: grants already
    held are kept once). Names the directory cannot hold (unsafe characters) are left out and logged.
    Returns the names added or given a new role."""
    wanted: dict[str, list[Grant]] = {}
    for call in calls:
        for role, names in ((Role.STAFF, call.staff), (Role.COMMITTEE, call.committee)):
            for name in names:
                wanted.setdefault(name, []).append(Grant(role=role, call_id=call.id))
    changed = []
    for name, grants in sorted(wanted.items()):
        if not re.fullmatch(NAME_PATTERN, name):
            logger(person=name[:64]).warning("people.seed_skipped", reason="nom hors de l’ensemble sûr")
            continue
        found = await person(rt, name)
        if found is not None and all(g in found.grants for g in grants):
            continue
        await _put(rt, merge_grants(found or Person(name=name), tuple(grants)))
        changed.append(name)
    return changed


async def check_operator(rt: Runtime, who: Principal) -> Principal:
    """An operator's `--as ROLE:NAME` on the server: the name must be in the directory with that role.

    Raises:
        UnknownPerson, RoleNotGranted: it is not.
    """
    check_operator_claim(await person(rt, who.actor.name), who.actor)
    return Principal(who.actor, who.via, who.proven, person=who.actor.name, os_user=who.os_user)


# --- personal access tokens ------------------------------------------------------------------


def _token_view(row: TokenRow, now: datetime) -> TokenView:
    state = "revoked" if row.revoked_at is not None else "expired" if row.expires_at <= now else "active"
    return TokenView(id=row.id, name=row.name, role=Role(row.role), created_at=row.created_at,
                     expires_at=row.expires_at, revoked_at=row.revoked_at, label=row.label, state=state)


async def issue_token(rt: Runtime, name: str, days: int, now: datetime, role: Role | None = None,
                      label: str | None = None) -> TokenIssued:
    """A new personal token for the person, in `role` (or their only role), valid `days` days; only its
    SHA-256 is stored.

    Raises:
        NotFound: nobody of that name. RoleNotGranted: the role is not theirs, or they hold several
        and none was named. InvalidCommand: days out of 1–365, a label too long.
    """
    check_days(days, TOKEN_DAYS_MAX, "d’un jeton")
    if label is not None and (len(label) > 120 or not label.isprintable()):
        raise InvalidCommand("Libellé de jeton : 120 caractères imprimables au plus.")
    found = await person(rt, name)
    if found is None:
        raise NotFound(f"« {name} » n’est pas dans l’annuaire (amiflow people add).")
    acting = token_role(found, role)
    secret = secrets.token_urlsafe(32)
    row = TokenRow(id=f"tok-{secrets.token_hex(6)}", name=name, role=acting.value, digest=digest(secret),
                   created_at=now, expires_at=expiry(now, days), label=label)
    await rt.store.add_token(row)
    logger(person=name).info("token.issued", token_id=row.id, role=acting.value, days=days)
    return TokenIssued(id=row.id, token=secret, expires_at=row.expires_at)


async def tokens(rt: Runtime, name: str | None = None, now: datetime | None = None) -> list[TokenView]:
    """The tokens (or one person's), without their secrets; `now` decides which have expired."""
    at = now or datetime.now(UTC)
    return [_token_view(r, at) for r in await rt.store.tokens(name)]


async def revoke_token(rt: Runtime, who: Principal, token_id: str, now: datetime) -> TokenView:
    """Revoke a token: a person their own, an operator on the server anyone's. A token already revoked
    stays revoked at its first revocation.

    Raises:
        NotFound: no such token, or (for a person) not one of theirs — the same answer, so that nobody
        learns another's token ids.
    """
    found = next((t for t in await rt.store.tokens() if t.id == token_id), None)
    if found is None or not may_revoke(found.name, who.actor, is_operator(who)):
        raise NotFound(f"Jeton inconnu « {token_id[:40]} ».")
    await rt.store.revoke_token(token_id, now)
    logger(person=found.name).info("token.revoked", token_id=token_id, by=str(who.actor), via=who.provenance)
    revoked = next(t for t in await rt.store.tokens(found.name) if t.id == token_id)
    return _token_view(revoked, now)


def is_operator(who: Principal) -> bool:
    """Whether the principal is an operator on the server (the command line, which holds the keyring)."""
    return who.via == "cli"


async def authenticate_token(rt: Runtime, token: str, now: datetime) -> Principal:
    """The person a personal token stands for, in the token's role.

    Raises:
        Unauthenticated: no token, or one unknown, expired or revoked, or whose person has left the
        directory or lost the role.
    """
    if not token or len(token) > TOKEN_MAX_LENGTH:
        raise Unauthenticated()
    row = await rt.store.token_by_digest(digest(token))
    if row is None or not token_usable(row.expires_at, row.revoked_at, now):
        raise Unauthenticated()
    found = await person(rt, row.name)
    if found is None or not found.may_act_as(Role(row.role)):
        raise Unauthenticated()
    return Principal(Actor(role=Role(row.role), name=row.name), via="token", proven=True, person=row.name)


# --- sign-in and invitations -----------------------------------------------------------------


def acting_role(found: Person, role: Role | None = None) -> Role:
    """The role a signed-in person acts in: the one asked (theirs), else the first they hold.

    Raises:
        RoleNotGranted: the role asked is not theirs, or they hold none.
    """
    if role is not None:
        check_operator_claim(found, Actor(role=role, name=found.name))
        return role
    held = found.roles()
    for candidate in ROLE_ORDER:
        if candidate in held:
            return candidate
    raise RoleNotGranted(f"« {found.name} » n’a aucun rôle dans l’annuaire.")


async def sign_in(rt: Runtime, issuer: str, subject: str, email: str | None, siret: str | None, now: datetime,
                  role: Role | None = None) -> Principal:
    """The person an OpenID Connect identity is: matched on issuer and subject, then on e-mail (the
    identity is then bound to that person); someone unknown becomes a holder, with the SIRET of the
    claims.

    Raises:
        Unauthenticated: no issuer or subject. NotAllowed: the e-mail is a person's already bound to
        another identity. RoleNotGranted: `role` is not theirs.
    """
    if not issuer or not subject or len(issuer) > 500 or len(subject) > 255:
        raise Unauthenticated("Identité OpenID incomplète (émetteur et sujet attendus).")
    mail = normal_email(email)
    row = await rt.store.person_by_identity(issuer, subject)
    found = to_person(row) if row is not None else None
    if found is None and mail is not None and (by_mail := await rt.store.person_by_email(mail)) is not None:
        candidate = to_person(by_mail)
        if candidate.issuer is not None or candidate.subject is not None:
            raise NotAllowed(f"L’adresse {mail} est liée à une autre identité : demandez à un opérateur.")
        found = candidate.model_copy(update={"issuer": issuer, "subject": subject})
        if siret and found.siret is None:
            found = _with(found, siret=siret)
        await _put(rt, found)
        logger(person=found.name).info("people.identity_bound", issuer=issuer)
    if found is None:
        taken = {p.name for p in await rt.store.people()}
        found = _with(Person(name=holder_name(subject, mail, taken), grants=(Grant(role=Role.HOLDER),)),
                      email=mail, issuer=issuer, subject=subject, siret=siret)
        await _put(rt, found)
        logger(person=found.name).info("people.holder_signed_up", issuer=issuer)
    acting = acting_role(found, role)
    return Principal(Actor(role=acting, name=found.name), via="oidc", proven=True, person=found.name)


async def bind_local(rt: Runtime, issuer: str) -> list[Person]:
    """Under `amiflow up` (and in the tests), the local provider's subjects are the directory's names:
    every person without an identity is bound to theirs at that provider. Returns the people that
    provider may sign in (those bound to it), the others being bound elsewhere."""
    listed = []
    for known in await listing(rt):
        if known.issuer is None and known.subject is None:
            known = known.model_copy(update={"issuer": issuer, "subject": known.name})  # noqa: PLW2901
            await _put(rt, known)
        if known.issuer == issuer:
            listed.append(known)
    return listed


def _with(found: Person, **changes: object) -> Person:
    """The person with `changes`, checked (claims that do not fit the directory are left out)."""
    kept = {**found.model_dump()}
    for key, value in changes.items():
        try:
            kept = Person.model_validate({**kept, key: value}).model_dump()
        except ValidationError:
            logger(person=found.name).warning("people.claim_ignored", claim=key)
    return Person.model_validate(kept)


async def invite(rt: Runtime, name: str, days: int, now: datetime) -> str:
    """A single-use invitation link's secret for a person of the directory, valid `days` days.

    Raises:
        NotFound: nobody of that name. InvalidCommand: days out of 1–30.
    """
    check_days(days, INVITATION_DAYS_MAX, "d’une invitation")
    if await person(rt, name) is None:
        raise NotFound(f"« {name} » n’est pas dans l’annuaire (amiflow people add).")
    secret = secrets.token_urlsafe(32)
    await rt.store.add_invitation(InvitationRow(id=f"inv-{secrets.token_hex(6)}", name=name, digest=digest(secret),
                                                created_at=now, expires_at=expiry(now, days)))
    logger(person=name).info("invitation.issued", days=days)
    return secret


async def accept_invitation(rt: Runtime, token: str, now: datetime, role: Role | None = None) -> Principal:
    """The person an invitation link was made for; the link is used up.

    Raises:
        Unauthenticated: unknown, expired or already used, or its person has left the directory.
    """
    if not token or len(token) > TOKEN_MAX_LENGTH:
        raise Unauthenticated("Lien d’invitation inconnu, expiré ou déjà utilisé.")
    used = await rt.store.use_invitation(digest(token), now)
    found = await person(rt, used.name) if used is not None else None
    if found is None:
        raise Unauthenticated("Lien d’invitation inconnu, expiré ou déjà utilisé.")
    return Principal(Actor(role=acting_role(found, role), name=found.name), via="invitation", proven=True,
                     person=found.name)
