"""The directory of people: who may act in which role (staff and committee for named calls), and the
rules that check a claimed identity against it. Pure: the directory itself lives in the journal."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field, model_validator

from domain.access import Actor, Role
from domain.errors import InvalidCommand, NotAllowed
from domain.record import Record

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_EMAIL_CHAR = r"[^@\s\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]"  # no control, no bidi
EMAIL_PATTERN = rf"^{_EMAIL_CHAR}{{1,64}}@{_EMAIL_CHAR}{{1,189}}$"
SIRET_PATTERN = r"^[0-9]{14}$"
# Roles a grant names a call for: the call files' `staff:` and `committee:` lists.
CALL_ROLES = frozenset({Role.STAFF, Role.COMMITTEE})
# Roles a person of the directory may hold (the system is no person).
PERSON_ROLES = frozenset(Role) - {Role.SYSTEM}
TOKEN_DAYS_MAX = 365
INVITATION_DAYS_MAX = 30

PersonName = Annotated[str, Field(pattern=NAME_PATTERN)]


class UnknownPerson(NotAllowed):
    """The name is not in the directory."""

    code = "unknown_person"


class RoleNotGranted(NotAllowed):
    """The person is in the directory, without that role."""

    code = "role_not_granted"


class Grant(Record):
    """One role of a person; staff and committee grants name their call."""

    role: Role
    call_id: Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[a-z0-9][a-z0-9._-]*$")] | None = None

    @model_validator(mode="after")
    def _call_when_needed(self) -> Grant:
        if self.role is Role.SYSTEM:
            raise ValueError("le rôle system n’est pas celui d’une personne")
        if self.role in CALL_ROLES and self.call_id is None:
            raise ValueError(f"le rôle {self.role.value} ({self.role.label}) nomme son appel (--call APPEL)")
        return self

    def __str__(self) -> str:
        return f"{self.role.value}@{self.call_id}" if self.call_id else self.role.value


class Person(Record):
    """A person of the directory, with their roles and, once they signed in, their OpenID identity."""

    name: PersonName
    email: Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN)] | None = None
    grants: tuple[Grant, ...] = ()
    issuer: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    subject: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    siret: Annotated[str, Field(pattern=SIRET_PATTERN)] | None = None

    def roles(self) -> set[Role]:
        """The roles this person may act in."""
        return {g.role for g in self.grants}

    def may_act_as(self, role: Role) -> bool:
        """Whether this person holds `role` (for any call)."""
        return role in self.roles()

    def calls(self, role: Role) -> set[str]:
        """The calls this person holds `role` for."""
        return {g.call_id for g in self.grants if g.role is role and g.call_id is not None}


def normal_email(email: str | None) -> str | None:
    """An e-mail as the directory keeps it (trimmed, lower case), or None when empty."""
    if email is None or not email.strip():
        return None
    return email.strip().lower()


def check_name(name: str) -> str:
    """A person's name, checked against the safe set of characters.

    Raises:
        InvalidCommand: not a safe identifier.
    """
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidCommand(f"« {name[:80]} » n’est pas un nom de personne valable : 1 à 64 caractères parmi "
                             "a-z, 0-9, « . », « _ », « - », commençant par une lettre ou un chiffre.")
    return name


def merge_grants(person: Person, grants: tuple[Grant, ...]) -> Person:
    """The person with `grants` added (those already held are kept once, in order)."""
    merged = list(person.grants)
    for grant in grants:
        if grant not in merged:
            merged.append(grant)
    return person.model_copy(update={"grants": tuple(merged)})


def check_operator_claim(person: Person | None, actor: Actor) -> None:
    """An operator on the server acts for `actor` (`--as ROLE:NAME`): the name must be in the directory
    with that role.

    Raises:
        UnknownPerson: nobody of that name in the directory.
        RoleNotGranted: the person does not hold that role.
    """
    if person is None:
        raise UnknownPerson(f"« {actor.name} » n’est pas dans l’annuaire : amiflow people add {actor.name} "
                            f"--role {actor.role.value} … (amiflow people list pour les personnes connues).")
    if not person.may_act_as(actor.role):
        held = ", ".join(sorted(r.value for r in person.roles())) or "aucun"
        raise RoleNotGranted(f"« {person.name} » n’a pas le rôle {actor.role.value} ({actor.role.label}) dans "
                             f"l’annuaire (rôles : {held}).")


def token_role(person: Person, role: Role | None) -> Role:
    """The role a personal token acts in: the one asked, which the person must hold, or the person's
    only role.

    Raises:
        RoleNotGranted: the role asked is not the person's, or the person holds none or several.
    """
    if role is not None:
        check_operator_claim(person, Actor(role=role, name=person.name))
        return role
    roles = person.roles()
    if len(roles) != 1:
        held = ", ".join(sorted(r.value for r in roles)) or "aucun"
        raise RoleNotGranted(f"« {person.name} » a {len(roles)} rôles ({held}) : dites lequel le jeton porte "
                             "(--role ROLE).")
    return next(iter(roles))


def check_days(days: int, maximum: int, what: str) -> int:
    """A validity in days, between 1 and `maximum`.

    Raises:
        InvalidCommand: out of bounds.
    """
    if not 1 <= days <= maximum:
        raise InvalidCommand(f"Durée de validité {what} : de 1 à {maximum} jours (reçu {days}).")
    return days


def expiry(now: datetime, days: int) -> datetime:
    """When something valid `days` days from `now` expires."""
    return now + timedelta(days=days)


def token_usable(expires_at: datetime, revoked_at: datetime | None, now: datetime) -> bool:
    """Whether a personal token still opens: neither revoked nor expired."""
    return revoked_at is None and now < expires_at


def may_revoke(owner: str, who: Actor | None, operator: bool) -> bool:
    """A person revokes their own tokens; an operator (on the server) anyone's."""
    return operator or (who is not None and who.name == owner)


def holder_name(subject: str, email: str | None, taken: set[str]) -> str:
    """A directory name for a person signing in for the first time: from the e-mail's local part (or
    the subject), reduced to the safe characters, made unique against `taken`."""
    base = (email.split("@", 1)[0] if email else subject).lower()
    base = re.sub(r"[^a-z0-9._-]+", "-", base).strip("._-")[:56] or "porteur"
    if not re.match(r"^[a-z0-9]", base):
        base = f"p{base}"[:56]
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name
