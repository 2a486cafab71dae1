"""What every page uses: the templates and their French filters, the signed-in person, the CSRF token
of forms, the navigation of each role, and the HTML error pages (403 and 404 in French).

    who: Viewer                                  # a route's parameter: the person signed in (else sign-in)
    form = await posted(request)                 # the form of a POST, its CSRF token checked
    return render(request, "page.html", title="…", …)
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from amiflow import signin
from amiflow.bootstrap import Runtime
from amiflow.services.principal import Principal
from domain.access import Role
from domain.calendar import PARIS
from domain.errors import DomainError
from domain.signin import return_path, same_site_request

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSRF = "amiflow.csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

# What each role finds in the header, first item first (the home page leads there).
NAV: dict[Role, list[tuple[str, str]]] = {
    Role.STAFF: [("/appels", "Mes appels")],
    Role.HOLDER: [("/mes-dossiers", "Mes dossiers"), ("/depot", "Déposer un dossier")],
    Role.REVIEWER: [("/expertises", "Mes expertises")],
    Role.COMMITTEE: [("/comite", "Dossiers à décider")],
    Role.AUDITOR: [("/audit", "Audit")],
}
DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")


# --- how times read ---------------------------------------------------------------------------


def offset(instant: datetime) -> str:
    """Paris's offset at that instant: UTC+01:00 in winter, UTC+02:00 in summer."""
    text = instant.astimezone(PARIS).strftime("%z")
    return f"UTC{text[:3]}:{text[3:]}"


def paris_long(instant: datetime | None) -> str:
    """lundi 30 novembre 2026 à 14 h 05 (UTC+01:00)."""
    if instant is None:
        return "—"
    local = instant.astimezone(PARIS)
    return (f"{DAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]} {local.year} "
            f"à {local.hour} h {local.minute:02d} ({offset(instant)})")


def paris_short(instant: datetime | None) -> str:
    """30/11/2026 14:05 (UTC+01:00), for tables."""
    if instant is None:
        return "—"
    return f"{instant.astimezone(PARIS).strftime('%d/%m/%Y %H:%M')} ({offset(instant)})"


def iso(instant: datetime | None) -> str:
    """The machine-readable instant of a <time> element."""
    return instant.astimezone(UTC).isoformat(timespec="seconds") if instant else ""


def _amount(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def left(due: datetime | None, now: datetime) -> str:
    """How long is left before `due`, or how late it is: « dans 3 jours », « en retard de 2 heures »."""
    if due is None:
        return ""
    gap = due - now
    late = gap < timedelta(0)
    gap = abs(gap)
    if gap >= timedelta(days=2):
        text = _amount(gap.days, "jour", "jours")
    elif gap >= timedelta(hours=1):
        text = _amount(int(gap.total_seconds() // 3600), "heure", "heures")
    else:
        text = _amount(max(1, int(gap.total_seconds() // 60)), "minute", "minutes")
    return f"en retard de {text}" if late else f"dans {text}"


def euros(amount: int | None) -> str:
    """510 000 € (thousands apart by a narrow no-break space, as French writes them); — for none."""
    return "—" if amount is None else f"{amount:,} €".replace(",", "\u202f")


ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)
ENVIRONMENT.filters.update(paris=paris_long, paris_short=paris_short, iso=iso, euros=euros)
ENVIRONMENT.globals.update(left=left)


# --- who is signed in -----------------------------------------------------------------------------


class SignInRequired(Exception):
    """The page needs a signed-in person: the browser goes to sign-in, then comes back."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


async def viewer(request: Request) -> Principal:
    """The person signed in on this browser (checked against the directory), else sign-in first."""
    who = await signin.signed_in(request, runtime(request))
    if who is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(back)
    request.state.who = who
    return who


Viewer = Annotated[Principal, Depends(viewer)]
Rt = Annotated[Runtime, Depends(runtime)]


def now() -> datetime:
    """The instant a page is served."""
    return datetime.now(UTC)


# --- forms -------------------------------------------------------------------------------------------


class FormRefused(DomainError):
    """A form that does not come from amiflow's own pages (no CSRF token, or another's)."""

    code = "cross_site"


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get(CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF] = token
    return token


REFUSED_FORM = "Ce formulaire a expiré ou ne vient pas d’amiflow : rechargez la page et recommencez."


def check_same_site(request: Request) -> None:
    """Refuse a change sent from another site (its Origin or Referer), before its body is read."""
    site = runtime(request).settings.public_url or str(request.base_url).rstrip("/")
    if not same_site_request(request.method, request.headers.get("origin"), request.headers.get("referer"), site):
        raise FormRefused(REFUSED_FORM)


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse a change that does not carry this session's token, or comes from another site."""
    check_same_site(request)
    expected = request.session.get(CSRF)
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        raise FormRefused(REFUSED_FORM)


async def posted(request: Request) -> FormData:
    """The form of a POST, once its CSRF token (field `csrf`, or the X-CSRF-Token header of a
    script) is checked."""
    form = await request.form(max_files=0, max_fields=500)
    sent = form.get(CSRF_FIELD)
    check_csrf(request, sent if isinstance(sent, str) else request.headers.get(CSRF_HEADER))
    return form


def field_id(name: str) -> str:
    """The id of a form field, which an error summary links to."""
    return "champ-" + "".join(c if c.isalnum() else "-" for c in name)


# --- pages ---------------------------------------------------------------------------------------------


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of the back office, with the person, their navigation and this session's CSRF token."""
    who: Principal | None = getattr(request.state, "who", None)
    notice = request.session.pop(NOTICE, None) if "session" in request.scope else None
    page = ENVIRONMENT.get_template(template).render(notice=notice if isinstance(notice, str) else None,
        request=request, who=who, nav=NAV.get(who.actor.role, []) if who else [],
        role_label=who.actor.role.label if who else "",
        csrf=csrf_token(request) if "session" in request.scope else "", field_id=field_id,
        path=request.url.path, now=now(), **context)
    return HTMLResponse(page, status, headers={"Cache-Control": "no-store"})


NOTICE = "amiflow.notice"


def back_to(request: Request, path: str, notice: str | None = None) -> RedirectResponse:
    """After a form: back to a page of the site (303), with a notice shown there once. The notice is
    kept in the session (the address only says there is one), so that no link can make the site say
    what it did not."""
    target = return_path(path) or "/"
    if notice:
        request.session[NOTICE] = notice[:300]
        target += ("&" if "?" in target else "?") + "fait=1"
    return RedirectResponse(target, 303)


TITLES = {401: "Connexion requise", 403: "Accès refusé", 404: "Page introuvable", 409: "Refusé par les règles",
          413: "Envoi trop volumineux", 415: "Type de fichier refusé", 422: "Saisie invalide",
          429: "Trop de demandes", 500: "Erreur interne", 503: "Service indisponible"}


def error_page(request: Request, status: int, detail: str, code: str,
               headers: dict[str, str] | None = None) -> Response:
    """An error as a page in French (the API's problem+json says the same to scripts)."""
    if getattr(request.state, "who", None) is None and "session" in request.scope:  # a route-less path
        request.state.who = signin.principal_from_session(request)
    if status != 401:
        response = render(request, "error.html", status, heading=TITLES.get(status, "Refusé"), detail=detail,
                          code=code)
        response.headers.update(headers or {})
        return response
    return RedirectResponse(f"/auth/login?next={quote(request.url.path)}", 303)


def install(app: FastAPI) -> None:
    """Sign-in redirects, and HTML error pages for every path outside the API."""
    async def sign_in_first(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(f"/auth/login?next={quote(exc.back)}", 303)

    app.add_exception_handler(SignInRequired, sign_in_first)
    app.state.error_page = error_page
