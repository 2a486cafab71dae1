"""Sign-in with OpenID Connect, as a FastAPI router: authorization code with PKCE (S256) against any
standard provider (Keycloak, Entra ID, LemonLDAP::NG) and ProConnect's particulars — `state` and
`nonce` of 32 characters and more, `acr_values` and the `amr` claim asked, a `userinfo` that answers
a signed JWT, sign-out through `end_session`. The person is matched in the directory by
`people.sign_in` (issuer and subject, then e-mail); invitation links sign in people who have no such
account. The session lives in a signed cookie whose secret is in the data directory.

    app.add_middleware(SessionMiddleware, **session_options(settings))   # or install(app, rt)
    app.include_router(signin_router(rt))
    principal_from_session(request)  # the signed-in Principal, or None (no I/O)
    await signed_in(request, rt)     # the same, checked against the directory
    session_may_act(request, settings)  # a POST carried by the cookie comes from amiflow's own pages

Pieces of authlib build the request (random values, PKCE challenge, grant URI, token request);
joserfc (authlib's JOSE library) verifies the ID token and the signed userinfo against the provider's
JWKS. Sign-in attempts are rate-limited per address (`domain.signin`)."""

from __future__ import annotations

import html
import json
import math
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.middleware.sessions import SessionMiddleware

from amiflow.bootstrap import Runtime
from amiflow.logs import logger
from amiflow.services import people
from amiflow.services.principal import Principal
from amiflow.settings import Settings
from domain.access import Actor
from domain.errors import DomainError
from domain.signin import SIGN_IN_RATE, random_value_ok, return_path, same_site_request
from domain.throttle import Bucket, Rate, idle, take

PRINCIPAL = "amiflow.principal"
PENDING = "amiflow.pending"
ID_TOKEN = "amiflow.id_token"
COOKIE = "amiflow_session"
SESSION_SECONDS = 8 * 3600
PENDING_MAX = 4  # sign-ins started and not finished, per browser (several tabs)
PENDING_SECONDS = 900
ALGORITHMS = ("RS256", "PS256", "ES256")
BASE_SCOPE = "openid email profile"
LEEWAY = 60  # seconds of clock difference tolerated with the provider


class SignInFailed(DomainError):
    """The provider's answer does not prove who signs in."""

    code = "signin_failed"


def session_secret(settings: Settings) -> str:
    """The secret that signs session cookies: `AMIFLOW_SESSION_SECRET`, else a file of the data
    directory created on first use (mode 0600; never committed)."""
    if settings.session_secret:
        return settings.session_secret
    path = settings.data_dir / "session.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it meanwhile
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


def session_options(settings: Settings) -> dict[str, Any]:
    """SessionMiddleware's arguments: signed cookie, 8 hours, SameSite=Lax (the provider's redirect
    back is a top-level navigation), Secure when amiflow is reached over HTTPS."""
    return {"secret_key": session_secret(settings), "session_cookie": COOKIE, "max_age": SESSION_SECONDS,
            "same_site": "lax", "https_only": settings.public_url.startswith("https://")}


def install(app: FastAPI, rt: Runtime, rate: Rate = SIGN_IN_RATE) -> None:
    """Give `app` the session cookie and the sign-in routes under /auth."""
    app.add_middleware(SessionMiddleware, **session_options(rt.settings))
    app.include_router(signin_router(rt, rate))


def principal_from_session(request: Request) -> Principal | None:
    """The person signed in on this browser (through OpenID Connect or an invitation), or None."""
    if "session" not in request.scope:
        return None
    saved = request.session.get(PRINCIPAL)
    if not isinstance(saved, dict):
        return None
    try:
        actor = Actor.parse(str(saved["actor"]))
    except (KeyError, DomainError):
        return None
    return Principal(actor, via=str(saved.get("via", "oidc")), proven=True, person=saved.get("person"))


async def signed_in(request: Request, rt: Runtime) -> Principal | None:
    """The person signed in on this browser, provided the directory still has them in that role (a
    person removed, or whose role was taken away, is signed out here); None otherwise."""
    who = principal_from_session(request)
    if who is None:
        return None
    found = await people.person(rt, who.person or who.actor.name)
    if found is None or not found.may_act_as(who.actor.role):
        request.session.clear()
        return None
    return who


def session_may_act(request: Request, settings: Settings) -> bool:
    """Whether a request authenticated by the session cookie may change anything: reads always, the
    rest only from amiflow's own pages (`domain.signin.same_site_request`) — the API's principal
    dependency asks this before it accepts the cookie for a POST."""
    site = settings.public_url or str(request.base_url).rstrip("/")
    return same_site_request(request.method, request.headers.get("origin"), request.headers.get("referer"), site)


def _remember(request: Request, principal: Principal, id_token: str | None) -> None:
    request.session.pop(PENDING, None)
    request.session[PRINCIPAL] = {"actor": str(principal.actor), "via": principal.via, "person": principal.person}
    if id_token:
        request.session[ID_TOKEN] = id_token
    else:
        request.session.pop(ID_TOKEN, None)


# --- the provider -----------------------------------------------------------------------------


@dataclass
class OpenIdProvider:
    """An OpenID provider as its discovery document describes it, with its keys (fetched on first use,
    the keys again when a token names one not seen yet)."""

    issuer: str
    client_id: str
    client_secret: str
    metadata: dict[str, Any] = field(default_factory=dict)
    keys: KeySet | None = None
    keys_fetched: float = 0.0

    async def discover(self, http: httpx.AsyncClient) -> dict[str, Any]:
        if not self.metadata:
            answer = await http.get(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration")
            answer.raise_for_status()
            found = answer.json()
            if found.get("issuer") != self.issuer:
                raise SignInFailed(f"Le fournisseur se présente comme « {found.get('issuer')} », "
                                   f"attendu « {self.issuer} » (AMIFLOW_OIDC_ISSUER).")
            self.metadata = found
        return self.metadata

    async def key_set(self, http: httpx.AsyncClient, refresh: bool = False) -> KeySet:
        if self.keys is None or (refresh and time.monotonic() - self.keys_fetched > 10):
            answer = await http.get((await self.discover(http))["jwks_uri"])
            answer.raise_for_status()
            self.keys = KeySet.import_key_set(answer.json())
            self.keys_fetched = time.monotonic()
        return self.keys

    def algorithms(self, name: str) -> list[str]:
        """The signing algorithms accepted for a kind of token: those the provider says it uses, among
        the asymmetric ones (never `none`, never a shared secret)."""
        said = self.metadata.get(name) or ["RS256"]
        return [a for a in said if a in ALGORITHMS] or ["RS256"]

    async def verify(self, http: httpx.AsyncClient, token: str, kind: str, **expected: Any) -> dict[str, Any]:
        """The claims of a JWT the provider signed, checked: signature (JWKS), `iss`, `aud`, `exp` and
        whatever `expected` names (`nonce`, `sub`).

        Raises:
            SignInFailed: a bad signature, an unknown key, a claim missing or not the one expected.
        """
        algorithms = self.algorithms(f"{kind}_signing_alg_values_supported")
        try:
            try:
                decoded = jwt.decode(token, await self.key_set(http), algorithms=algorithms)
            except JoseError:  # perhaps a key rotated since: fetch the keys once more
                decoded = jwt.decode(token, await self.key_set(http, refresh=True), algorithms=algorithms)
            options: dict[str, Any] = {
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.client_id},
                "sub": {"essential": True},
            }
            if kind == "id_token":
                options["exp"] = {"essential": True}
            for claim, value in expected.items():
                options[claim] = {"essential": True, "value": value}
            jwt.JWTClaimsRegistry(leeway=LEEWAY, **options).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            what = "jeton d’identité" if kind == "id_token" else "réponse userinfo signée"
            raise SignInFailed(f"{what.capitalize()} refusé{'e' if kind != 'id_token' else ''} : "
                               f"{type(exc).__name__} ({exc}).") from None
        claims = dict(decoded.claims)
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise SignInFailed("Jeton d’identité refusé : plusieurs destinataires sans « azp » pour ce client.")
        return claims

    async def userinfo(self, http: httpx.AsyncClient, access_token: str, subject: str) -> dict[str, Any]:
        """The claims of the userinfo endpoint: a signed JWT (`application/jwt`, as ProConnect answers)
        verified against the keys, or plain JSON; its `sub` must be the ID token's.

        Raises:
            SignInFailed: the endpoint refused, or its answer is not about the person of the ID token.
        """
        endpoint = (await self.discover(http)).get("userinfo_endpoint")
        if not endpoint:
            return {}
        answer = await http.get(endpoint, headers={"Authorization": f"Bearer {access_token}"})
        if answer.status_code != 200:
            raise SignInFailed(f"Le fournisseur a refusé userinfo (HTTP {answer.status_code}).")
        kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/jwt":
            return await self.verify(http, answer.text.strip(), "userinfo", sub=subject)
        claims = answer.json()
        if not isinstance(claims, dict) or claims.get("sub") != subject:
            raise SignInFailed("Réponse userinfo refusée : elle ne porte pas sur la personne du jeton d’identité.")
        return claims


# --- the routes -------------------------------------------------------------------------------


class Limiter:
    """Each address's sign-in allowance, in this process; the rate is `domain.signin`'s."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.buckets: dict[str, Bucket] = {}

    def check(self, request: Request) -> Response | None:
        """None when the attempt may go on, else the 429 to answer."""
        now = time.monotonic()
        address = request.client.host if request.client else "?"
        allowed, self.buckets[address], wait = take(self.buckets.get(address), self.rate, now)
        if len(self.buckets) > 10_000:
            self.buckets = {a: b for a, b in self.buckets.items() if not idle(b, self.rate, now)}
        if allowed:
            return None
        retry = max(1, math.ceil(min(wait, 86_400)))
        logger(address=address).warning("signin.rate_limited", retry_after=retry)
        return _page("Trop de tentatives", f"Trop de tentatives de connexion depuis cette adresse. Réessayez dans "
                     f"{retry} secondes.", 429, {"Retry-After": str(retry)})


def _page(title: str, text: str, status: int = 200, headers: dict[str, str] | None = None,
          link: tuple[str, str] | None = None) -> HTMLResponse:
    more = f'<p><a href="{html.escape(link[0])}">{html.escape(link[1])}</a></p>' if link else ""
    body = (f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'</head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{more}</body></html>')
    return HTMLResponse(body, status, headers={"Cache-Control": "no-store", **(headers or {})})


def _refused(text: str, status: int = 400) -> HTMLResponse:
    return _page("Connexion refusée", text, status, link=("/auth/login", "Recommencer la connexion"))


def signin_router(rt: Runtime, rate: Rate = SIGN_IN_RATE) -> APIRouter:
    """The routes under /auth: login, callback, logout, logged-out, invitation, me."""
    routes = SignInRoutes(rt, rate)
    router = APIRouter(prefix="/auth", tags=["connexion"], include_in_schema=False)  # browser pages, not the API
    router.add_api_route("/login", routes.login, methods=["GET"], summary="Se connecter (OpenID Connect)")
    router.add_api_route("/callback", routes.callback, methods=["GET"], summary="Retour du fournisseur d’identité")
    router.add_api_route("/logout", routes.logout, methods=["GET", "POST"],
                         summary="Se déconnecter (ici et chez le fournisseur)")
    router.add_api_route("/logged-out", routes.logged_out, methods=["GET"], summary="Déconnecté")
    router.add_api_route("/invitation/{token}", routes.invitation, methods=["GET"],
                         summary="Lien d’invitation (page de confirmation)")
    router.add_api_route("/invitation/{token}", routes.accept, methods=["POST"],
                         summary="Se connecter par un lien d’invitation")
    router.add_api_route("/me", routes.me, methods=["GET"], summary="Qui est connecté sur ce navigateur")
    return router


def _unavailable() -> HTMLResponse:
    return _page("Connexion indisponible", "Le fournisseur d’identité ne répond pas ; réessayez plus tard.", 503)


class SignInRoutes:
    """The handlers of the sign-in routes, over one runtime and one provider."""

    def __init__(self, rt: Runtime, rate: Rate) -> None:
        self.rt = rt
        self.settings = rt.settings
        self.provider = OpenIdProvider(self.settings.oidc_issuer, self.settings.oidc_client_id,
                                       self.settings.oidc_client_secret)
        self.limiter = Limiter(rate)
        # Under `amiflow up`, the local provider lists the directory's people: kept fresh at each sign-in.
        from amiflow.stack import read_stack

        local = read_stack(self.settings).get("idp_url")
        self.local_people = people_file(self.settings) if local and local == self.settings.oidc_issuer else None

    def base(self, request: Request) -> str:
        return self.settings.public_url or str(request.base_url).rstrip("/")

    @staticmethod
    def http() -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=15, follow_redirects=False)

    async def login(self, request: Request, next: str | None = None) -> Response:
        """Send the browser to the provider, with a fresh state, nonce and PKCE verifier kept in the session."""
        if (limited := self.limiter.check(request)) is not None:
            return limited
        provider = self.provider
        if not provider.issuer or not provider.client_id:
            return _page("Connexion indisponible", "Aucun fournisseur d’identité n’est configuré "
                         "(AMIFLOW_OIDC_ISSUER, AMIFLOW_OIDC_CLIENT_ID, AMIFLOW_OIDC_CLIENT_SECRET).", 503)
        try:
            async with self.http() as http:
                meta = await provider.discover(http)
        except (httpx.HTTPError, ValueError, SignInFailed) as exc:
            logger().warning("signin.discovery_failed", issuer=provider.issuer, error=str(exc)[:200])
            return _unavailable()
        if self.local_people is not None:
            write_idp_people(self.local_people, await idp_people(self.rt, self.provider.issuer))
        state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
        url = prepare_grant_uri(meta["authorization_endpoint"], provider.client_id, "code",
                                redirect_uri=f"{self.base(request)}/auth/callback", state=state,
                                **_authorization_parameters(meta, nonce, verifier, self.settings.oidc_acr_values))
        pending = {k: v for k, v in (request.session.get(PENDING) or {}).items()
                   if isinstance(v, dict) and time.time() - v.get("at", 0) < PENDING_SECONDS}
        pending = dict(list(pending.items())[-(PENDING_MAX - 1):])
        pending[state] = {"nonce": nonce, "verifier": verifier, "next": return_path(next), "at": time.time()}
        request.session[PENDING] = pending
        return RedirectResponse(url, 302, headers={"Cache-Control": "no-store"})

    async def callback(self, request: Request) -> Response:
        """The provider sends the browser back with a code: exchange it, prove who it is, open the session."""
        if (limited := self.limiter.check(request)) is not None:
            return limited
        query = request.query_params
        if error := query.get("error"):
            logger().info("signin.provider_error", error=error[:80])
            return _refused(f"Le fournisseur d’identité a refusé la connexion ({error[:80]}).")
        state, code = query.get("state", ""), query.get("code", "")
        pending = request.session.get(PENDING) or {}
        flow = pending.pop(state, None) if random_value_ok(state) else None
        request.session[PENDING] = pending
        if not isinstance(flow, dict) or not code or time.time() - flow.get("at", 0) >= PENDING_SECONDS:
            return _refused("Demande de connexion inconnue ou expirée (state) : recommencez depuis amiflow.")
        if query.get("iss") and query["iss"] != self.provider.issuer:  # RFC 9207: another provider's answer
            return _refused("La réponse vient d’un autre fournisseur d’identité que celui configuré.")
        try:
            async with self.http() as http:
                principal, id_token = await _finish(http, self.provider, self.rt, code, flow,
                                                    f"{self.base(request)}/auth/callback")
        except SignInFailed as exc:
            logger().warning("signin.refused", reason=exc.message[:300])
            return _refused(exc.message)
        except DomainError as exc:  # the directory refused this identity
            logger().warning("signin.refused", reason=exc.message[:300])
            return _refused(exc.message, 403)
        except httpx.HTTPError:
            return _unavailable()
        _remember(request, principal, id_token)
        return RedirectResponse(str(flow.get("next") or "/"), 303)

    async def logout(self, request: Request) -> Response:
        """Close the session here, then at the provider (`end_session` with the ID token as hint)."""
        id_token = request.session.get(ID_TOKEN)
        who = principal_from_session(request)
        request.session.clear()
        if who is not None:
            logger(person=who.person or who.actor.name).info("signin.logout", via=who.via)
        done = f"{self.base(request)}/auth/logged-out"
        endpoint = self.provider.metadata.get("end_session_endpoint")
        if id_token and endpoint:
            query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": done,
                               "state": generate_token(43), "client_id": self.provider.client_id})
            return RedirectResponse(f"{endpoint}?{query}", 303)
        return RedirectResponse(done, 303)

    async def logged_out(self) -> Response:
        return _page("Déconnecté", "Vous êtes déconnecté d’amiflow.", link=("/auth/login", "Se reconnecter"))

    async def invitation(self, token: str) -> Response:
        """A page with one button: a GET must not use the link up (mail scanners open links)."""
        safe = html.escape(token[:200], quote=True)
        body = ('<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Invitation</title></head><body>'
                "<h1>Invitation à amiflow</h1><p>Ce lien ne sert qu’une fois.</p>"
                f'<form method="post" action="/auth/invitation/{safe}"><button type="submit">Se connecter</button>'
                "</form></body></html>")
        return HTMLResponse(body, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    async def accept(self, request: Request, token: str) -> Response:
        """Use the invitation link up and open the session of the person it was made for."""
        if (limited := self.limiter.check(request)) is not None:
            return limited
        try:
            principal = await people.accept_invitation(self.rt, token, datetime.now(UTC))
        except DomainError as exc:
            return _page("Invitation refusée", exc.message, 403)
        logger(person=principal.person).info("signin.invitation_used")
        _remember(request, principal, None)
        return RedirectResponse("/", 303)

    async def me(self, request: Request) -> Response:
        who = await signed_in(request, self.rt)
        if who is None:
            return JSONResponse({"detail": "Personne n’est connecté."}, 401)
        return JSONResponse({"actor": str(who.actor), "person": who.person, "via": who.via})


def _authorization_parameters(meta: dict[str, Any], nonce: str, verifier: str, acr_values: str) -> dict[str, str]:
    """What the authorization request asks besides the client and state: the scopes (ProConnect's
    `siret` where offered), the nonce, PKCE's S256 challenge, `acr_values` and the `amr` claim."""
    asked = {"scope": BASE_SCOPE + (" siret" if "siret" in meta.get("scopes_supported", []) else ""),
             "nonce": nonce, "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
    acr = acr_values or " ".join(meta.get("acr_values_supported", [])[:1])
    if acr:
        asked["acr_values"] = acr
    if meta.get("claims_parameter_supported"):
        asked["claims"] = json.dumps({"id_token": {"amr": {"essential": True}, "acr": {"essential": True}}})
    return asked


async def _finish(http: httpx.AsyncClient, provider: OpenIdProvider, rt: Runtime, code: str,
                  flow: dict[str, Any], redirect_uri: str) -> tuple[Principal, str]:
    """Exchange the code (with the PKCE verifier), verify the ID token and userinfo, find the person."""
    meta = await provider.discover(http)
    body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect_uri,
                                 code_verifier=flow["verifier"])
    auth: tuple[str | bytes, str | bytes] | None = (provider.client_id, provider.client_secret)
    methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" not in methods and "client_secret_post" in methods:
        body += "&" + urlencode({"client_id": provider.client_id, "client_secret": provider.client_secret})
        auth = None
    answer = await http.post(meta["token_endpoint"], content=body, auth=auth or httpx.USE_CLIENT_DEFAULT,
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "Accept": "application/json"})
    if answer.status_code != 200:
        error = answer.json().get("error", "") if "json" in answer.headers.get("content-type", "") else ""
        raise SignInFailed(f"Le fournisseur a refusé le code d’autorisation ({error or answer.status_code} : "
                           "expiré, déjà utilisé ou émis pour un autre client).")
    tokens = answer.json()
    id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
    if not isinstance(id_token, str) or not isinstance(access_token, str):
        raise SignInFailed("Le fournisseur n’a pas donné de jeton d’identité.")
    claims = await provider.verify(http, id_token, "id_token", nonce=flow["nonce"])
    info = await provider.userinfo(http, access_token, str(claims["sub"]))
    email = info.get("email") or claims.get("email")
    siret = info.get("siret") or claims.get("siret")
    principal = await people.sign_in(rt, provider.issuer, str(claims["sub"]),
                                     email if isinstance(email, str) else None,
                                     siret if isinstance(siret, str) else None, datetime.now(UTC))
    logger(person=principal.person).info("signin.oidc", issuer=provider.issuer, acr=claims.get("acr"),
                                         amr=claims.get("amr"), role=principal.actor.role.value)
    return principal, id_token


def people_file(settings: Settings) -> Path:
    """The JSON file of the directory's people that the local provider's login page lists."""
    return settings.idp_dir / "people.json"


async def idp_people(rt: Runtime, issuer: str) -> list[dict[str, str | None]]:
    """The directory as the local provider at `issuer` lists it on its login page: the subject is the
    directory's name, and the people listed are bound to that provider (`people.bind_local`)."""
    return [{"sub": p.subject, "name": p.name, "email": p.email, "siret": p.siret,
             "role": ", ".join(str(g) for g in p.grants)} for p in await people.bind_local(rt, issuer)]


def write_idp_people(path: Path, entries: list[dict[str, str | None]]) -> None:
    """Write the local provider's list of people (atomically: it reads the file at each login page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)
