"""The directory of people, personal tokens, sign-in and invitations, at the service layer on the
in-memory store (which passes the store's contract suite), and the domain's rules they apply."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from amiflow.bootstrap import Runtime, memory_runtime
from amiflow.services import NotFound, Principal
from amiflow.services import people as people_service
from amiflow.services.errors import ServiceError, Unauthenticated
from amiflow.settings import Settings
from domain.access import Actor, Role
from domain.codec_policy import (
    CodecLimits,
    TooLarge,
    check_encode,
    check_request,
    may_decode,
    may_decode_without_dossier,
)
from domain.errors import InvalidCommand, NotAllowed
from domain.people import (
    Grant,
    Person,
    RoleNotGranted,
    UnknownPerson,
    check_operator_claim,
    holder_name,
)
from domain.throttle import Rate, idle, take
from journal.keys import Keyring
from tests.test_services import CALL

NOW = datetime.now(UTC).replace(microsecond=0)
STAFF = Grant(role=Role.STAFF, call_id="hdf-pmcb-reemploi")
ISSUER = "https://idp.region.example"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(data_dir=tmp_path / "data")
    yield memory_runtime(settings, Keyring.open(settings.data_dir, create=True))


def test_the_rules_of_the_directory() -> None:
    amelie = Person(name="amelie", grants=(STAFF, Grant(role=Role.AUDITOR)))
    assert amelie.roles() == {Role.STAFF, Role.AUDITOR} and amelie.may_act_as(Role.STAFF)
    assert not amelie.may_act_as(Role.HOLDER)
    check_operator_claim(amelie, Actor.parse("staff:amelie"))
    with pytest.raises(UnknownPerson) as unknown:
        check_operator_claim(None, Actor.parse("staff:amelie"))
    assert unknown.value.code == "unknown_person" and "annuaire" in unknown.value.message
    with pytest.raises(RoleNotGranted) as role:
        check_operator_claim(amelie, Actor.parse("holder:amelie"))
    assert role.value.code == "role_not_granted" and "auditor, staff" in role.value.message
    for bad in ({"name": "Amélie"}, {"name": "a\nb"}, {"name": "-x"}, {"name": "a" * 65},
                {"name": "x", "grants": ({"role": "staff"},)}, {"name": "x", "grants": ({"role": "system"},)},
                {"name": "x", "siret": "123"}, {"name": "x", "email": "pas une adresse"},
                {"name": "x", "email": "a\u202e@b.fr"}):
        with pytest.raises(ValueError):
            Person.model_validate(bad)
    assert may_decode(Role.STAFF) and may_decode(Role.AUDITOR)
    assert not any(may_decode(r) for r in (Role.HOLDER, Role.REVIEWER, Role.COMMITTEE))
    assert holder_name("sub", "Jean.Dupont+ami@acme.fr", {"jean.dupont-ami"}) == "jean.dupont-ami-2"
    assert holder_name("_x_", None, set()) == "x"


async def test_operators_add_give_roles_list_and_remove_people(rt: Runtime) -> None:
    await people_service.add(rt, "amelie", [STAFF], email="Amelie@Region.FR")
    both = await people_service.add(rt, "amelie", people_service.role_grants("committee", ["hdf-pmcb-reemploi"]))
    assert both.email == "amelie@region.fr" and both.roles() == {Role.STAFF, Role.COMMITTEE}
    await people_service.add(rt, "amelie", [STAFF])  # again: kept once
    assert [p.name for p in await people_service.listing(rt)] == ["amelie"]
    assert len((await people_service.listing(rt))[0].grants) == 2
    for name, grants in (("Amélie", [STAFF]), ("x\u202e", [STAFF])):
        with pytest.raises(InvalidCommand, match="nom de personne"):
            await people_service.add(rt, name, grants)
    with pytest.raises(InvalidCommand, match="nomme son appel"):
        people_service.role_grants("staff", [])
    with pytest.raises(InvalidCommand, match="rôle de personne"):
        people_service.role_grants("chef", [])
    with pytest.raises(ServiceError) as taken:
        await people_service.add(rt, "bruno", [STAFF], email="amelie@region.fr")
    assert taken.value.code == "person_conflict"
    await people_service.remove(rt, "amelie")
    with pytest.raises(NotFound):
        await people_service.remove(rt, "amelie")


async def test_the_call_files_seed_the_directory_once(rt: Runtime) -> None:
    assert await people_service.seed(rt, [CALL]) == ["amelie", "cora"]
    assert await people_service.seed(rt, [CALL]) == []
    cora = await people_service.person(rt, "cora")
    assert cora is not None and cora.grants == (Grant(role=Role.COMMITTEE, call_id=CALL.id),)
    claim = await people_service.check_operator(rt, Principal.operator("staff:amelie", os_user="julien"))
    assert claim.person == "amelie" and claim.provenance == "cli:julien"
    with pytest.raises(RoleNotGranted):
        await people_service.check_operator(rt, Principal.operator("holder:amelie"))
    with pytest.raises(UnknownPerson):
        await people_service.check_operator(rt, Principal.operator("staff:intrus"))


async def test_a_personal_token_authenticates_until_it_expires_or_is_revoked(rt: Runtime) -> None:
    await people_service.add(rt, "amelie", [STAFF, Grant(role=Role.AUDITOR)])
    await people_service.add(rt, "rita", [Grant(role=Role.REVIEWER)])
    with pytest.raises(RoleNotGranted, match="--role"):  # two roles: say which
        await people_service.issue_token(rt, "amelie", 1, NOW)
    with pytest.raises(NotFound):
        await people_service.issue_token(rt, "inconnu", 1, NOW)
    with pytest.raises(InvalidCommand):
        await people_service.issue_token(rt, "rita", 0, NOW)
    issued = await people_service.issue_token(rt, "amelie", 2, NOW, role=Role.STAFF, label="export nocturne")
    assert len(issued.token) >= 43 and issued.expires_at == NOW + timedelta(days=2)
    listed = await people_service.tokens(rt, now=NOW)
    assert [(t.id, t.name, t.role, t.state) for t in listed] == [(issued.id, "amelie", Role.STAFF, "active")]
    assert issued.token not in repr(await rt.store.tokens())  # only its digest is kept
    who = await people_service.authenticate_token(rt, issued.token, NOW)
    assert (who.actor, who.via, who.proven, who.person) == (Actor.parse("staff:amelie"), "token", True, "amelie")
    for bad in ("", "x" * 500, issued.token + "x"):
        with pytest.raises(Unauthenticated) as refused:
            await people_service.authenticate_token(rt, bad, NOW)
        assert refused.value.code == "unauthenticated"
    with pytest.raises(Unauthenticated):  # expired
        await people_service.authenticate_token(rt, issued.token, NOW + timedelta(days=2))
    # A person revokes their own tokens only; someone else's is "unknown" to them; an operator any.
    rita = await people_service.issue_token(rt, "rita", 1, NOW)
    rita_who = await people_service.authenticate_token(rt, rita.token, NOW)
    with pytest.raises(NotFound):
        await people_service.revoke_token(rt, rita_who, issued.id, NOW)
    assert (await people_service.revoke_token(rt, rita_who, rita.id, NOW)).state == "revoked"
    operator = Principal.operator("staff:amelie", os_user="julien")
    assert (await people_service.revoke_token(rt, operator, issued.id, NOW)).state == "revoked"
    with pytest.raises(Unauthenticated):
        await people_service.authenticate_token(rt, issued.token, NOW)
    # A token stops with its person's role, or with its person.
    again = await people_service.issue_token(rt, "rita", 1, NOW)
    await people_service.remove(rt, "rita")
    with pytest.raises(Unauthenticated):
        await people_service.authenticate_token(rt, again.token, NOW)


async def test_sign_in_matches_on_identity_then_email_and_makes_strangers_holders(rt: Runtime) -> None:
    await people_service.add(rt, "amelie", [STAFF], email="amelie@region.fr")
    first = await people_service.sign_in(rt, ISSUER, "sub-a", "AMELIE@region.fr", None, NOW)
    assert (str(first.actor), first.via, first.proven) == ("staff:amelie", "oidc", True)
    bound = await people_service.person(rt, "amelie")
    assert bound is not None and (bound.issuer, bound.subject) == (ISSUER, "sub-a")
    # The same identity, now with another e-mail: still amelie.
    assert (await people_service.sign_in(rt, ISSUER, "sub-a", "autre@region.fr", None, NOW)).person == "amelie"
    # Another identity claiming amelie's e-mail is refused: it is bound already.
    with pytest.raises(NotAllowed):
        await people_service.sign_in(rt, "https://autre.example", "sub-z", "amelie@region.fr", None, NOW)
    stranger = await people_service.sign_in(rt, ISSUER, "sub-b", "contact@acme.fr", "90000000000017", NOW)
    assert str(stranger.actor) == "holder:contact"
    acme = await people_service.person(rt, "contact")
    assert acme is not None and acme.siret == "90000000000017" and acme.roles() == {Role.HOLDER}
    odd = await people_service.sign_in(rt, ISSUER, "sub-c", "x@y.fr", "pas-un-siret", NOW)  # a bad claim is left out
    assert (await people_service.person(rt, odd.actor.name)).siret is None  # type: ignore[union-attr]
    with pytest.raises(Unauthenticated):
        await people_service.sign_in(rt, "", "sub", None, None, NOW)


async def test_an_invitation_opens_once_for_its_person(rt: Runtime) -> None:
    await people_service.add(rt, "rita", [Grant(role=Role.REVIEWER)])
    with pytest.raises(NotFound):
        await people_service.invite(rt, "inconnu", 7, NOW)
    link = await people_service.invite(rt, "rita", 7, NOW)
    who = await people_service.accept_invitation(rt, link, NOW + timedelta(days=1))
    assert (str(who.actor), who.via, who.proven) == ("reviewer:rita", "invitation", True)
    with pytest.raises(Unauthenticated):
        await people_service.accept_invitation(rt, link, NOW + timedelta(days=1))
    late = await people_service.invite(rt, "rita", 1, NOW)
    with pytest.raises(Unauthenticated):
        await people_service.accept_invitation(rt, late, NOW + timedelta(days=1))


def test_a_token_bucket_lets_a_burst_through_then_refills_at_its_rate() -> None:
    rate = Rate(per_second=2.0, burst=3)
    bucket = None
    for _ in range(3):
        allowed, bucket, _ = take(bucket, rate, 100.0)
        assert allowed
    allowed, bucket, wait = take(bucket, rate, 100.0)
    assert not allowed and wait == 0.5
    assert not idle(bucket, rate, 100.5)
    allowed, bucket, _ = take(bucket, rate, 100.5)  # half a second: one more
    assert allowed and not take(bucket, rate, 100.5)[0]
    assert idle(bucket, rate, 102.0) and take(bucket, rate, 1000.0)[1].level == 2.0  # never above the burst


def test_what_one_codec_request_may_carry() -> None:
    limits = CodecLimits(payloads=2, payload_bytes=10, dossiers=1)
    check_request(limits, [10, 1], ["hdf-pmcb-reemploi.a"])
    for sizes, dossiers in (([1, 1, 1], []), ([11], []), ([1], ["hdf-pmcb-reemploi.a", "hdf-pmcb-reemploi.b"])):
        with pytest.raises(TooLarge):
            check_request(limits, sizes, dossiers)
    for odd in ("../x", "hdf-pmcb-reemploi.a\n", "a" * 201):
        with pytest.raises(InvalidCommand, match="forme attendue"):
            check_request(CodecLimits(), [1], [odd])
    check_encode(Role.AUDITOR)
    with pytest.raises(NotAllowed):
        check_encode(Role.REVIEWER)
    assert may_decode_without_dossier("julien", frozenset({"julien"}))
    assert not may_decode_without_dossier("amelie", frozenset({"julien"}))
    assert not may_decode_without_dossier(None, frozenset())
