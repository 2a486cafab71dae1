"""Sign-in with OpenID Connect through the whole flow, against the REAL local provider
(deploy/idp/provider.mjs: the pinned `oidc-provider` on Node, started here on a free port) and the
sign-in router served by a real uvicorn on a free port, with a fresh migrated PostgreSQL directory per
test. An HTTP client follows the redirects and picks a person on the provider's login page; once,
Chromium (Debian's, driven by Playwright) does the same.

Covered: the whole flow (code + PKCE, ID token, signed userinfo, the person matched in the
directory), a userinfo answered as a signed JWT as ProConnect sends it (verified, and refused once
tampered with), a wrong nonce refused, an expired code refused, sign-out through `end_session`,
invitation links, the rate limit; and the pure rules of `domain.signin`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse

from amiflow import signin
from amiflow.api import create_app
from amiflow.bootstrap import Runtime, memory_runtime
from amiflow.services import people
from amiflow.services.invitations import send_invitation
from amiflow.settings import Settings
from amiflow.stack import start_idp, wait_idp
from amiflow.vault import Vault
from domain.errors import InvalidCommand
from domain.signin import SIGN_IN_RATE, random_value_ok, return_path, same_site_request
from domain.throttle import Rate
from journal.keys import DossierKeys, Keyring
from journal.postgres import PostgresStore, app_url, create_engine
from tests.test_resilience import free_port, stop_process
from tests.test_web_ui import CHROMIUM, require_chromium

CLIENT_SECRET = secrets.token_urlsafe(24)
STAFF = people.role_grants("staff", ["hdf-pmcb-reemploi"])


@dataclass
class Idp:
    """A local provider started for this module, and the one address its client may come back to."""

    issuer: str
    rp_port: int
    people_file: Path


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Idp]]:
    """Two local providers, started together: most tests sign in with the first (codes live 60 s);
    the expired-code test with the second, whose codes live one second."""
    tmp = tmp_path_factory.mktemp("idp")
    started = []
    try:
        for i, code_ttl in enumerate((60, 1)):
            issuer, rp = f"http://127.0.0.1:{free_port()}", free_port()
            people_file = tmp / f"people-{i}.json"
            people_file.write_text("[]")
            log = tmp / f"idp-{i}.log"
            back = f"http://127.0.0.1:{rp}/auth"
            process = start_idp(issuer, CLIENT_SECRET, [f"{back}/callback"], [f"{back}/logged-out"], people_file,
                                log, code_ttl=code_ttl)
            started.append((Idp(issuer, rp, people_file), process, log))
        for found, process, log in started:
            wait_idp(found.issuer, process, log)
        yield [found for found, _, _ in started]
    finally:
        for _, process, _ in started:
            stop_process(process)


@pytest.fixture
def idp(providers: list[Idp]) -> Idp:
    return providers[0]


@pytest.fixture
async def rt(database: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime over a fresh PostgreSQL directory (no Temporal: sign-in does not need it)."""
    settings = Settings(data_dir=tmp_path / "data", database_url=app_url(database))
    store = PostgresStore(create_engine(settings.database_url, pool_size=2))
    keys = DossierKeys(Keyring.open(settings.data_dir, create=True), store)
    yield Runtime(settings, store, keys, Vault(settings.vault_dir, keys))
    await store.dispose()


Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serve the sign-in router for a provider, on a real uvicorn in this event loop; returns its URL."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(rt: Runtime, provider: Idp, rate: Rate = SIGN_IN_RATE) -> str:
        settings = replace(rt.settings, oidc_issuer=provider.issuer, oidc_client_id="amiflow",
                           oidc_client_secret=CLIENT_SECRET)
        app = create_app(replace(rt, settings=settings), sign_in_rate=rate)  # the API, which installs sign-in

        @app.get("/essai")  # a page of the relying party reading the session ("/" is the back office's)
        async def home(request: Request) -> JSONResponse:
            who = signin.principal_from_session(request)
            return JSONResponse({"actor": str(who.actor) if who else None})

        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=provider.rp_port, log_config=None,
                                               access_log=False, lifespan="off"))
        servers.append((server, asyncio.create_task(server.serve())))
        while not server.started:
            await asyncio.sleep(0.02)
        return f"http://127.0.0.1:{provider.rp_port}"

    yield start
    for server, task in servers:
        server.should_exit = True
        await task


async def directory(rt: Runtime, idp: Idp, extra: list[dict[str, Any]] | None = None) -> None:
    """Amélie (staff) and Rita (reviewer, no e-mail) in the directory; the provider lists them (as
    `amiflow up` writes its list), plus identities the directory does not know yet."""
    await people.add(rt, "amelie", STAFF, email="amelie@region.example")
    await people.add(rt, "rita", people.role_grants("reviewer", []))
    listed = [{"sub": p.name, "name": p.name, "email": p.email, "siret": p.siret, "role": ""}
              for p in await people.listing(rt)]  # not bound to the provider: matched by e-mail
    signin.write_idp_people(idp.people_file, [*listed, *(extra or [])])


def login_form(page: httpx.Response) -> tuple[str, list[str]]:
    """The provider's login page: where the form posts, and the people it offers."""
    assert page.status_code == 200 and "Choisir une personne" in page.text, page.text[:500]
    action = re.search(r'<form method="post" action="([^"]+/login)"', page.text)
    assert action, page.text[:500]
    return action.group(1), re.findall(r'name="sub" value="([^"]+)"', page.text)


async def to_login_page(http: httpx.AsyncClient, rp: str, next_path: str = "/auth/me",
                        tamper: Callable[[str], str] | None = None) -> httpx.Response:
    """Start a sign-in at the relying party and follow the provider to its login page."""
    start = await http.get(f"{rp}/auth/login", params={"next": next_path})
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    return await http.get(tamper(authorize) if tamper else authorize, follow_redirects=True)


async def pick(http: httpx.AsyncClient, page: httpx.Response, sub: str, follow: bool = True) -> httpx.Response:
    """Pick a person on the login page (and follow the redirects back to the relying party)."""
    action, offered = login_form(page)
    assert sub in offered, offered
    url = httpx.URL(str(page.url)).join(action)
    return await http.post(url, data={"sub": sub}, follow_redirects=follow)


async def test_the_whole_flow_signs_a_person_of_the_directory_in(rt: Runtime, idp: Idp, serve: Serve) -> None:
    await directory(rt, idp)
    rp = await serve(rt, idp)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{rp}/auth/me")).status_code == 401
        start = await http.get(f"{rp}/auth/login", params={"next": "/auth/me"})
        asked = parse_qs(urlsplit(start.headers["location"]).query)
        # What ProConnect requires of the request: PKCE S256, long state and nonce, acr and amr asked.
        assert asked["code_challenge_method"] == ["S256"] and len(asked["code_challenge"][0]) == 43
        assert len(asked["state"][0]) >= 32 and len(asked["nonce"][0]) >= 32
        assert asked["acr_values"] == ["eidas1"] and "amr" in json.loads(asked["claims"][0])["id_token"]
        assert asked["scope"] == ["openid email profile siret"]
        page = await http.get(start.headers["location"], follow_redirects=True)
        assert "Amélie" not in page.text and {"amelie", "rita"} <= set(login_form(page)[1])
        done = await pick(http, page, "amelie")
        assert str(done.url) == f"{rp}/auth/me"
        assert done.json() == {"actor": "staff:amelie", "person": "amelie", "via": "oidc"}
        assert (await http.get(f"{rp}/essai")).json() == {"actor": "staff:amelie"}
        me = await http.get(f"{rp}/api/v1/me")  # the API takes the browser's session as it takes a token
        assert me.status_code == 200 and me.json()["actor"] == "staff:amelie", me.text
        elsewhere = await http.post(f"{rp}/api/v1/tokens", json={"days": 1},
                                    headers={"Origin": "https://ailleurs.example"})
        assert elsewhere.status_code == 403 and elsewhere.json()["code"] == "cross_site", elsewhere.text
        assert await people.tokens(rt, "amelie") == []  # nothing was made for the other site
        assert (rt.settings.data_dir / "session.key").stat().st_mode & 0o777 == 0o600  # the cookie's secret
        bound = await people.person(rt, "amelie")
        assert bound is not None and (bound.issuer, bound.subject) == (idp.issuer, "amelie")
        await people.remove(rt, "amelie")  # out of the directory: signed out at the next request
        assert (await http.get(f"{rp}/auth/me")).status_code == 401
        assert (await http.get(f"{rp}/essai")).json() == {"actor": None}
        assert (await http.get(f"{rp}/api/v1/me")).status_code == 401


async def test_userinfo_as_a_signed_jwt_as_proconnect_sends_it(rt: Runtime, idp: Idp, serve: Serve) -> None:
    """The SIRET and e-mail of a stranger are only in userinfo, which the provider signs (RS256): the
    relying party verifies and decodes it; the same JWT tampered with, or for another client, is refused."""
    zoe = {"sub": "zoe-agent", "name": "Zoé", "email": "zoe@ressourcerie.example", "siret": "90000000000017"}
    await directory(rt, idp, [zoe])
    rp = await serve(rt, idp)
    async with httpx.AsyncClient() as http:
        done = await pick(http, await to_login_page(http, rp), "zoe-agent")
        assert done.json() == {"actor": "holder:zoe", "person": "zoe", "via": "oidc"}
    holder = await people.person(rt, "zoe")
    assert holder is not None and (holder.siret, holder.email) == ("90000000000017", "zoe@ressourcerie.example")

    # The same userinfo, fetched as a client: a JWT, and what the relying party does with it.
    verifier = secrets.token_urlsafe(48)
    async with httpx.AsyncClient() as http:
        tokens = await code_flow(http, idp, "zoe-agent", verifier)
        answer = await http.get(f"{idp.issuer}/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert answer.headers["content-type"].startswith("application/jwt")
        header = json.loads(base64.urlsafe_b64decode(answer.text.split(".")[0] + "=="))
        assert header["alg"] == "RS256"
        provider = signin.OpenIdProvider(idp.issuer, "amiflow", CLIENT_SECRET)
        identity = await provider.verify(http, tokens["id_token"], "id_token", nonce=tokens["nonce"])
        assert (identity["sub"], identity["acr"], identity["amr"]) == ("zoe-agent", "eidas1", ["pwd"])
        assert "siret" not in identity  # only in userinfo, as with ProConnect
        claims = await provider.verify(http, answer.text, "userinfo", sub="zoe-agent")
        assert (claims["siret"], claims["email"]) == ("90000000000017", "zoe@ressourcerie.example")
        head, body, signature = answer.text.split(".")
        forged = json.loads(base64.urlsafe_b64decode(body + "=="))
        forged["siret"] = "11111111111111"
        forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
        for bad in (f"{head}.{forged_body}.{signature}", f"{head}.{body}.{signature[:-4]}AAAA"):
            with pytest.raises(signin.SignInFailed):
                await provider.verify(http, bad, "userinfo", sub="zoe-agent")
        with pytest.raises(signin.SignInFailed):  # addressed to another client
            await signin.OpenIdProvider(idp.issuer, "autre", CLIENT_SECRET).verify(http, answer.text, "userinfo")
        with pytest.raises(signin.SignInFailed):  # about someone else
            await provider.verify(http, answer.text, "userinfo", sub="amelie")


async def code_flow(http: httpx.AsyncClient, idp: Idp, sub: str, verifier: str) -> dict[str, Any]:
    """Code + PKCE as a bare client would run it (the test's own view of the provider's answers)."""
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = f"http://127.0.0.1:{idp.rp_port}/auth/callback"
    nonce = secrets.token_urlsafe(32)
    query = urlencode({"client_id": "amiflow", "response_type": "code", "scope": "openid email siret",
                       "redirect_uri": redirect, "state": secrets.token_urlsafe(32), "nonce": nonce,
                       "code_challenge": challenge, "code_challenge_method": "S256", "acr_values": "eidas1",
                       "claims": json.dumps({"id_token": {"amr": {"essential": True}}})})
    page = await http.get(f"{idp.issuer}/auth?{query}", follow_redirects=True)
    back = await pick(http, page, sub, follow=False)
    while not back.headers["location"].startswith(redirect):
        back = await http.get(httpx.URL(str(back.url)).join(back.headers["location"]))
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    answer = await http.post(f"{idp.issuer}/token", auth=("amiflow", CLIENT_SECRET),
                             data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                                   "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return {**tokens, "nonce": nonce}


async def test_a_wrong_nonce_is_refused(rt: Runtime, idp: Idp, serve: Serve) -> None:
    await directory(rt, idp)
    rp = await serve(rt, idp)

    def other_nonce(url: str) -> str:
        return re.sub(r"nonce=[^&]+", f"nonce={secrets.token_urlsafe(32)}", url)

    async with httpx.AsyncClient() as http:
        refused = await pick(http, await to_login_page(http, rp, tamper=other_nonce), "amelie")
        assert refused.status_code == 400 and str(refused.url).startswith(f"{rp}/auth/callback")
        assert "Connexion refusée" in refused.text and "nonce" in html.unescape(refused.text)
        assert (await http.get(f"{rp}/auth/me")).status_code == 401
    assert (await people.person(rt, "amelie")).subject is None  # type: ignore[union-attr]


async def test_an_expired_code_is_refused(rt: Runtime, serve: Serve, providers: list[Idp]) -> None:
    """A provider whose codes live one second; the browser comes back with its code 1.5 seconds late."""
    short = providers[1]
    await directory(rt, short)
    rp = await serve(rt, short)
    async with httpx.AsyncClient() as http:
        back = await pick(http, await to_login_page(http, rp), "amelie", follow=False)
        while not back.headers["location"].startswith(f"{rp}/auth/callback"):
            back = await http.get(httpx.URL(str(back.url)).join(back.headers["location"]))
        await asyncio.sleep(1.5)  # the code's `exp` is its issue second + 1
        refused = await http.get(back.headers["location"])
        assert refused.status_code == 400, refused.text
        assert "refusé le code d’autorisation" in html.unescape(refused.text), refused.text
        assert (await http.get(f"{rp}/auth/me")).status_code == 401
        # Replaying the callback is refused too: the state was used up.
        again = await http.get(back.headers["location"])
        assert again.status_code == 400 and "state" in again.text


async def test_sign_out_goes_through_end_session(rt: Runtime, idp: Idp, serve: Serve) -> None:
    await directory(rt, idp)
    rp = await serve(rt, idp)
    async with httpx.AsyncClient() as http:
        assert (await pick(http, await to_login_page(http, rp), "amelie")).json()["actor"] == "staff:amelie"
        out = await http.get(f"{rp}/auth/logout")
        assert out.status_code == 303
        end = urlsplit(out.headers["location"])
        hint = parse_qs(end.query)
        assert f"{end.scheme}://{end.netloc}{end.path}" == f"{idp.issuer}/session/end"
        assert hint["post_logout_redirect_uri"] == [f"{rp}/auth/logged-out"]
        assert hint["id_token_hint"][0].count(".") == 2
        assert (await http.get(f"{rp}/auth/me")).status_code == 401  # closed here already
        confirm = await http.get(out.headers["location"])
        assert "Se déconnecter" in confirm.text
        action = re.search(r'action="([^"]+)"', confirm.text)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', confirm.text)
        assert action and xsrf, confirm.text
        done = await http.post(httpx.URL(str(confirm.url)).join(html.unescape(action.group(1))),
                               data={"xsrf": xsrf.group(1), "logout": "yes"}, follow_redirects=True)
        assert done.url.path == "/auth/logged-out" and "Vous êtes déconnecté" in done.text
        # Closed at the provider too: signing in again asks who, it does not sign amelie in silently.
        assert login_form(await to_login_page(http, rp))[1]


async def test_an_invitation_link_signs_its_person_in_once(rt: Runtime, idp: Idp, serve: Serve) -> None:
    """Rita has no account at a provider: the link mailed to her signs her in, once."""
    await directory(rt, idp)
    rp = await serve(rt, idp)
    with pytest.raises(InvalidCommand):  # no e-mail in the directory yet
        await send_invitation(rt, "rita", 7, datetime.now(UTC), rp)
    await people.add(rt, "rita", [], email="rita@labo.example")
    sent = await send_invitation(rt, "rita", 7, datetime.now(UTC), rp)
    [mail] = [message_from_bytes(p.read_bytes()) for p in rt.settings.mail_dir.glob("invitation-*.eml")]
    assert mail["To"] == "rita@labo.example"
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    link = re.search(r"http://\S+", text)
    assert link and link.group(0) == sent and "ne sert qu’une fois" in text
    async with httpx.AsyncClient() as http:
        page = await http.get(sent)
        assert page.status_code == 200 and "Se connecter" in page.text
        assert (await http.get(f"{rp}/auth/me")).status_code == 401  # opening the link uses nothing up
        used = await http.post(sent, follow_redirects=True)
        assert used.status_code == 200 and used.url.path == "/expertises"  # home, then the reviewer's page
        assert (await http.get(f"{rp}/essai")).json() == {"actor": "reviewer:rita"}
        assert (await http.get(f"{rp}/auth/me")).json()["via"] == "invitation"
    async with httpx.AsyncClient() as other:
        again = await other.post(sent)
        assert again.status_code == 403 and "déjà utilisé" in again.text


async def test_sign_in_attempts_are_rate_limited(idp: Idp, serve: Serve, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")  # no directory needed: the limit comes first
    rp = await serve(memory_runtime(settings, Keyring.open(settings.data_dir, create=True)), idp,
                     Rate(per_second=1 / 600, burst=3))
    async with httpx.AsyncClient() as http:
        for _ in range(3):
            assert (await http.get(f"{rp}/auth/login")).status_code == 302
        limited = await http.get(f"{rp}/auth/login")
        assert limited.status_code == 429 and 500 <= int(limited.headers["retry-after"]) <= 600
        assert "Trop de tentatives" in limited.text
        assert (await http.post(f"{rp}/auth/invitation/{'x' * 43}")).status_code == 429  # guessing links too


async def test_in_chromium(rt: Runtime, idp: Idp, serve: Serve, tmp_path: Path) -> None:
    """A real browser: sign in by picking Amélie on the provider's page, then sign out."""
    require_chromium()
    from playwright.async_api import async_playwright

    await directory(rt, idp)
    rp = await serve(rt, idp)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(f"{rp}/auth/login?next=/auth/me")
            await page.get_by_role("button", name=re.compile("^amelie")).click()
            await page.wait_for_url(f"{rp}/auth/me")
            assert json.loads(await page.inner_text("body"))["actor"] == "staff:amelie"
            await page.goto(f"{rp}/auth/logout")
            await page.get_by_role("button", name="Oui, me déconnecter").click()
            await page.wait_for_url(re.compile(re.escape(f"{rp}/auth/logged-out")))
            assert "Vous êtes déconnecté" in await page.inner_text("body")
            await page.goto(f"{rp}/auth/me")
            assert "Personne" in await page.inner_text("body")
        finally:
            await browser.close()


def test_the_rules_of_sign_in() -> None:
    assert SIGN_IN_RATE.burst == 20 and SIGN_IN_RATE.per_second * 300 == 20  # 20 at once, 40 in 5 minutes
    assert return_path("/dossiers?x=1") == "/dossiers?x=1"
    for bad in (None, "", "https://ailleurs.example/", "//ailleurs.example", "/\\ailleurs.example", "/a\nb",
                "dossiers", "/a b", "/" + "x" * 2001):
        assert return_path(bad) == "/", bad
    assert random_value_ok("a" * 32) and not random_value_ok("a" * 31) and not random_value_ok("a" * 31 + "/")
    site = "https://amiflow.region.example"
    assert same_site_request("GET", "https://ailleurs.example", None, site)  # reads never act
    assert same_site_request("POST", site, None, site) and same_site_request("POST", None, f"{site}/d/1", site)
    for origin, referer in (("https://ailleurs.example", f"{site}/"), (None, None), (None, f"{site}.ailleurs.example/"),
                            ("null", None)):
        assert not same_site_request("POST", origin, referer, site), (origin, referer)
