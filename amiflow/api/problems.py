"""Errors as `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail` (French) and the
rules' `code`. The status says which kind of refusal it was; the service layer decided it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from amiflow.errors import explain
from amiflow.logs import logger
from amiflow.services.errors import NotFound, ReadRefused
from domain.errors import DomainError, parser_reason

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://amiflow.example/problemes/"

TITLES: dict[int, str] = {
    400: "Requête mal formée",
    401: "Authentification requise",
    403: "Lecture refusée",
    404: "Introuvable",
    405: "Méthode non permise",
    409: "Refusé par les règles",
    413: "Requête trop volumineuse",
    415: "Type de contenu non pris en charge",
    422: "Donnée invalide",
    429: "Trop de requêtes",
    500: "Erreur interne",
    503: "Service indisponible",
}
STATUS_OF_CODE: dict[str, int] = {
    "unauthenticated": 401,
    "read_refused": 403,
    "not_found": 404,
    "invalid_command": 422,
    "invalid_input": 422,  # domain.inputs: a forbidden character, a date out of range…
    "cross_site": 403,
    "unknown_person": 403,
    "role_not_granted": 403,
    "too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
}


class Problem(BaseModel):
    """A refusal or failure, as RFC 9457 says it, with the rules' `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str


class ApiRefusal(DomainError):
    """A refusal of the HTTP layer itself (no token, too large, too many requests), with its code."""

    def __init__(self, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.headers = headers or {}


def problem(status: int, detail: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The problem+json response."""
    body = Problem(type=TYPE_BASE + code.replace("_", "-"), title=TITLES.get(status, "Refusé"), status=status,
                   detail=detail, code=code)
    return JSONResponse(body.model_dump(), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def refusal(exc: DomainError) -> tuple[int, str, str, dict[str, str]]:
    """What a typed refusal answers: status, French detail, code, headers (409: the rules refused)."""
    if isinstance(exc, ReadRefused) and exc.unknown is not None:  # may not know it exists: « inconnu »
        return refusal(exc.unknown)
    if isinstance(exc, NotFound):
        return 404, exc.message, NotFound.code, {}
    headers = exc.headers if isinstance(exc, ApiRefusal) else {}
    if exc.code == "unauthenticated":
        headers = {"WWW-Authenticate": 'Bearer realm="amiflow"', **headers}
    return STATUS_OF_CODE.get(exc.code, 409), exc.message, exc.code, headers


def for_error(exc: DomainError) -> JSONResponse:
    """The response to a typed refusal."""
    return problem(*refusal(exc))


def answer(request: Request, status: int, detail: str, code: str,
           headers: dict[str, str] | None = None) -> Response:
    """A problem+json under /api/; elsewhere the back office's page in French (`amiflow.web`), when
    the app has one."""
    page = getattr(request.app.state, "error_page", None)
    if page is not None and not request.url.path.startswith("/api/"):
        response: Response = page(request, status, detail, code, headers)
        return response
    return problem(status, detail, code, headers)


# What each endpoint may answer besides its success (the OpenAPI document says it).
COMMON: dict[int | str, dict[str, Any]] = {status: {"description": TITLES[status]} for status in
                                            (401, 403, 404, 409, 422, 429)}
PROBLEM_CONTENT = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def document_problems(schema: dict[str, Any]) -> None:
    """In an OpenAPI document, every 4xx and 5xx answer is a problem+json `Problem`."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status[:1] in ("4", "5"):
                    response["content"] = PROBLEM_CONTENT


def install(app: FastAPI) -> None:
    """Every error the app can meet becomes a problem; nothing answers a traceback."""

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        return answer(request, *refusal(exc))

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return answer(request, 422, f"Donnée invalide ({where}) : {parser_reason(first)}.", "invalid_input")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8, cut off…): said in French
            return answer(request, 422, "Corps de requête illisible : du JSON en UTF-8 est attendu.",
                          "invalid_input")
        api = request.url.path.startswith("/api/")
        detail = {404: "Adresse inconnue de l’API." if api else "Cette page n’existe pas.",
                  405: "Méthode non permise à cette adresse."}.get(exc.status_code, str(exc.detail))
        return answer(request, exc.status_code, detail, {404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"), dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> Response:
        reason = explain(exc)
        if reason is not None:  # a server it needs does not answer: said, without internals
            logger().warning("api_unavailable", path=request.url.path, error=type(exc).__name__)
            return answer(request, 503, "Service momentanément indisponible (base de données ou Temporal) : "
                          "réessayez.", "unavailable")
        logger().error("api_failure", path=request.url.path, error=type(exc).__name__)
        return answer(request, 500, "Erreur interne : elle est journalisée ; réessayez ou prévenez l’exploitant.",
                      "internal_error")

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
