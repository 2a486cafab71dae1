"""The endpoints under /api/v1/: each parses, calls one use case of the service layer with the
authenticated person, and renders what comes back. Nothing is decided here."""

from __future__ import annotations

import io
import json
import re
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from amiflow.api import uploads
from amiflow.api.auth import current_principal
from amiflow.api.problems import COMMON
from amiflow.bootstrap import Runtime
from amiflow.services import calls as call_service
from amiflow.services import dossiers as dossier_service
from amiflow.services import exports as export_service
from amiflow.services import people
from amiflow.services.audit import VerifyReport
from amiflow.services.audit import export as export_bundle
from amiflow.services.audit import verify as verify_journal
from amiflow.services.exports import FORMATS
from amiflow.services.principal import Principal
from amiflow.services.views import (
    AttachView,
    CallView,
    CommandSpec,
    DossierPage,
    DossierView,
    ExtensionPreview,
    HistoryView,
    Overview,
    TimelineView,
)
from domain.calendar import PARIS
from workflows.call import ExtensionResult
from workflows.dossier import CommandResult

router = APIRouter(prefix="/api/v1", responses=COMMON)
Who = Annotated[Principal, Depends(current_principal)]
DossierId = Annotated[str, PathParam(description="L’identifiant du dossier (appel.référence).", max_length=300)]
TOKEN_DAYS_MAX = 365


def runtime(request: Request) -> Runtime:
    """The runtime the app was created with."""
    rt: Runtime = request.app.state.rt
    return rt


Rt = Annotated[Runtime, Depends(runtime)]


def now() -> datetime:
    """The instant a request is served."""
    return datetime.now(UTC)


# --- who -------------------------------------------------------------------------------------


class Me(BaseModel):
    """Who the API takes the caller for."""

    actor: str
    role: str
    name: str
    person: str | None
    via: str


@router.get("/me", summary="Qui suis-je", response_model=Me)
async def me(who: Who) -> Me:
    """La personne que l’API reconnaît derrière le jeton, et son rôle."""
    return Me(actor=str(who.actor), role=who.actor.role.value, name=who.actor.name, person=who.person, via=who.via)


# --- calls -----------------------------------------------------------------------------------


@router.get("/calls", summary="Les appels et leurs phases", response_model=list[CallView])
async def calls(rt: Rt, who: Who) -> list[CallView]:
    """Les appels (AMI) définis, avec leurs phases telles qu’écrites dans leurs fichiers."""
    return call_service.listing(rt)


@router.get("/calls/{call_id}", summary="Un appel, tel qu’il court", response_model=CallView)
async def call(rt: Rt, who: Who, call_id: Annotated[str, PathParam(max_length=200)]) -> CallView:
    """Un appel et ses phases, prolongations comprises."""
    return await call_service.show(rt, call_id)


class Extension(BaseModel):
    """A phase's new closing."""

    until: datetime = Field(description="La nouvelle clôture (avec son décalage ; sans, heure de Paris).")


@router.post("/calls/{call_id}/phases/{phase_id}/extension", summary="Prolonger une phase",
             response_model=ExtensionResult)
async def extend(rt: Rt, who: Who, call_id: Annotated[str, PathParam(max_length=200)],
                 phase_id: Annotated[str, PathParam(max_length=200)], body: Extension) -> ExtensionResult:
    """Reporte la clôture d’une phase ; chaque dossier ouvert de la phase suit."""
    until = body.until if body.until.tzinfo else body.until.replace(tzinfo=PARIS)
    return await call_service.extend(rt, who, call_id, phase_id, until)


@router.get("/calls/{call_id}/phases/{phase_id}/extension-preview", summary="Ce qu’une prolongation toucherait",
            response_model=ExtensionPreview)
async def extension_preview(rt: Rt, who: Who, call_id: Annotated[str, PathParam(max_length=200)],
                            phase_id: Annotated[str, PathParam(max_length=200)],
                            until: Annotated[datetime, Query(description="La nouvelle clôture envisagée (sans "
                                                                         "décalage : heure de Paris).")],
                            ) -> ExtensionPreview:
    """Combien de dossiers ouverts de la phase une prolongation jusqu’à `until` toucherait, refusée comme
    la prolongation elle-même le serait."""
    instant = until if until.tzinfo else until.replace(tzinfo=PARIS)
    return await call_service.extension_preview(rt, who, call_id, phase_id, instant, now())


# --- dossiers --------------------------------------------------------------------------------


Tab = Annotated[str | None, Query(max_length=100, description="Un onglet (a-traiter, en-revue, clos…).")]
HolderType = Annotated[str | None, Query(max_length=100, description="Un type de porteur (entreprise…).")]
Territory = Annotated[str | None, Query(max_length=200, description="Un territoire (tel que le dossier le dit).")]
Sort = Annotated[Literal["id", "deadline"], Query(description="Par identifiant, ou par prochaine échéance "
                                                           "(la plus proche d’abord, les dossiers sans échéance "
                                                           "à la fin).")]


@router.get("/dossiers", summary="La liste des dossiers", response_model=DossierPage)
async def dossiers(
    rt: Rt, who: Who,
    call: Annotated[str | None, Query(max_length=200, description="Un appel.")] = None,
    status: Annotated[str | None, Query(max_length=100, description="Un statut (submitted, follow_up…).")] = None,
    phase: Annotated[str | None, Query(max_length=200, description="Une phase.")] = None,
    overdue: Annotated[bool, Query(description="Seulement ceux dont la prochaine échéance est passée.")] = False,
    after: Annotated[str | None, Query(max_length=600, description="Le `next` de la page précédente.")] = None,
    limit: Annotated[int, Query(ge=1, le=dossier_service.PAGE_MAX)] = 100,
    tab: Tab = None, holder_type: HolderType = None, territory: Territory = None, sort: Sort = "id",
) -> DossierPage:
    """Les dossiers que la personne peut connaître : identifiants, statuts, échéances (aucun contenu),
    par identifiant ou par prochaine échéance ; `next` donne la suite."""
    return await dossier_service.listing(rt, now(), call, status, phase, overdue, after, limit, who=who, tab=tab,
                                         holder_type=holder_type, territory=territory, order=sort)


@router.get("/dossiers/export", summary="Exporter la liste des dossiers", response_class=Response,
            responses={200: {"content": {media: {"schema": {"type": "string", "format": "binary"}}
                                         for media in FORMATS.values()},
                             "description": "Toute la liste filtrée (CSV, XLSX ou ODS), en-têtes en français."}})
async def export_list(
    rt: Rt, who: Who,
    format: Annotated[Literal["csv", "xlsx", "ods"], Query(description="Le format du fichier.")] = "csv",
    call: Annotated[str | None, Query(max_length=200, description="Un appel.")] = None,
    status: Annotated[str | None, Query(max_length=100, description="Un statut.")] = None,
    phase: Annotated[str | None, Query(max_length=200, description="Une phase.")] = None,
    overdue: Annotated[bool, Query(description="Seulement ceux dont la prochaine échéance est passée.")] = False,
    tab: Tab = None, holder_type: HolderType = None, territory: Territory = None, sort: Sort = "id",
) -> Response:
    """Toute la liste que la personne peut connaître, avec les mêmes filtres, dans un fichier de tableur."""
    file = await export_service.export(rt, who, now(), format, call_id=call, status=status, phase_id=phase,
                                       overdue=overdue, tab=tab, holder_type=holder_type, territory=territory,
                                       order=sort)
    return Response(file.data, media_type=file.media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.filename)}"})


@router.get("/overview", summary="Mon accueil", response_model=Overview)
async def overview(rt: Rt, who: Who) -> Overview:
    """Les appels de la personne et leurs dossiers par onglet, et les échéances des 7 prochains jours."""
    return await dossier_service.overview(rt, who, now())


class Draft(BaseModel):
    """A holder's draft: which call and phase, their reference, the content so far."""

    call: str = Field(max_length=200)
    phase: str = Field(max_length=200)
    reference: str = Field(max_length=300)
    content: dict[str, Any]


@router.put("/drafts", summary="Enregistrer un brouillon", response_model=CommandResult)
async def save_draft(rt: Rt, who: Who, body: Draft) -> CommandResult:
    """Enregistre le brouillon sans le déposer : le premier enregistrement le crée, les suivants remplacent
    son contenu ; la commande « submit » le dépose ensuite."""
    return await dossier_service.save_draft(rt, who, body.call, body.phase, body.reference, body.content, now())


class DossierFile(BaseModel):
    """A dossier as a holder submits it (the YAML of deploy/examples/, as JSON): the OpenAPI document
    shows this shape; the body itself is read by the same reader as `amiflow dossier submit`, so that
    a refusal says the same French words on every entry point."""

    call: str = Field(max_length=200)
    phase: str = Field(max_length=200)
    reference: str = Field(max_length=300)
    content: dict[str, Any]


# What a YAML reader does not take raw (C1 controls, DEL, line separators, lone surrogates): JSON escapes,
# so that the text reaches the rules' checks as it was sent (JSON puts them only in strings).
_UNREADABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _readable(text: str) -> str:
    """A JSON text the YAML reader reads as the same value."""
    return _UNREADABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


SUBMIT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/DossierFile"}}}}}


@router.post("/dossiers", summary="Déposer un dossier", response_model=CommandResult, status_code=201,
             openapi_extra=SUBMIT_BODY)
async def submit(rt: Rt, who: Who, body: Annotated[Any, Body()]) -> CommandResult:
    """Crée le dossier et le dépose ; déposer de nouveau la même référence retrouve le même dossier."""
    call_id = body.get("call") if isinstance(body, dict) else None
    with tempfile.TemporaryDirectory(prefix="submit-") as folder:
        file = Path(folder) / "dossier.json"  # JSON is YAML: the same reader as `amiflow dossier submit`
        file.write_text(_readable(json.dumps(body, ensure_ascii=False)), encoding="utf-8")
        return await dossier_service.submit(rt, who, call_id if isinstance(call_id, str) else "", file, now(),
                                            shown="dossier envoyé")


@router.get("/dossiers/{dossier_id}", summary="Un dossier", response_model=DossierView)
async def dossier(
    rt: Rt, who: Who, dossier_id: DossierId,
    as_of: Annotated[datetime | None, Query(description="Tel qu’il était à cet instant (rejoué du journal).")] = None,
    all_deadlines: Annotated[bool, Query(alias="all", description="Toutes les échéances à venir.")] = False,
) -> DossierView:
    """Le dossier tel que la personne peut le voir, et ce qu’il attend ; la lecture est journalisée."""
    instant = as_of if as_of is None or as_of.tzinfo else as_of.replace(tzinfo=PARIS)
    return await dossier_service.show(rt, who, dossier_id, now(), instant, all_deadlines)


@router.get("/dossiers/{dossier_id}/history", summary="L’historique d’un dossier", response_model=HistoryView)
async def history(rt: Rt, who: Who, dossier_id: DossierId,
                  bodies: Annotated[bool, Query(description="Le corps des événements, pour qui peut le lire.")]
                  = False) -> HistoryView:
    """Qui a fait quoi et quand, lectures comprises."""
    return await dossier_service.history(rt, who, dossier_id, now(), bodies)


@router.get("/dossiers/{dossier_id}/timeline", summary="La chronologie d’un dossier", response_model=TimelineView)
async def timeline(rt: Rt, who: Who, dossier_id: DossierId) -> TimelineView:
    """Événements et lectures dans l’ordre : métadonnées seulement."""
    return await dossier_service.timeline(rt, who, dossier_id, now())


@router.get("/dossiers/{dossier_id}/commands", summary="Les commandes possibles", response_model=list[CommandSpec])
async def available(rt: Rt, who: Who, dossier_id: DossierId) -> list[CommandSpec]:
    """Les commandes que la personne peut donner maintenant au dossier, avec leurs champs."""
    return await dossier_service.available(rt, who, dossier_id, now())


@router.post("/dossiers/{dossier_id}/commands/{command}", summary="Donner une commande",
             response_model=CommandResult)
async def give(rt: Rt, who: Who, dossier_id: DossierId, command: Annotated[str, PathParam(max_length=100)],
               fields: Annotated[dict[str, Any] | None, Body(description="Les champs de la commande.")] = None,
               ) -> CommandResult:
    """Une commande (acknowledge, request-complement…) avec ses champs en JSON ; les règles l’acceptent
    ou la refusent (409)."""
    return await dossier_service.command(rt, who, dossier_id, command, fields or {})


UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


@router.post("/dossiers/{dossier_id}/documents", summary="Joindre un document", response_model=AttachView,
             status_code=201, openapi_extra=UPLOAD_BODY,
             responses={413: {"description": "Document trop volumineux"},
                        415: {"description": "Pas en multipart/form-data"}})
async def upload(rt: Rt, who: Who, dossier_id: DossierId, request: Request) -> AttachView:
    """Un document (champ « file », multipart), reçu au fil de l’eau sur disque puis scellé dans le coffre ;
    taille, nombre et type sont ceux des règles."""
    with uploads.scratch(rt.settings.data_dir / "uploads") as folder:
        received = await uploads.receive(request, Path(folder))
        return await dossier_service.upload(rt, who, dossier_id, received.path, received.media_type)


@router.get("/dossiers/{dossier_id}/documents/{document_id}", summary="Télécharger un document",
            response_class=Response,
            responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                   "format": "binary"}}},
                             "description": "Le document, tel que déposé."}})
async def download(rt: Rt, who: Who, dossier_id: DossierId,
                   document_id: Annotated[str, PathParam(max_length=100)]) -> Response:
    """Le document, si la personne peut lire le contenu du dossier ; la lecture est journalisée."""
    ref, data = await dossier_service.document(rt, who, dossier_id, document_id, now())
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(ref.name)}",
        "X-Content-Type-Options": "nosniff", "X-Amiflow-Media-Type": ref.media_type})


# --- audit -----------------------------------------------------------------------------------


@router.get("/audit/verify", summary="Vérifier le journal", response_model=VerifyReport)
async def verify(rt: Rt, who: Who,
                 dossier: Annotated[str | None, Query(max_length=300, description="Un seul dossier.")] = None,
                 ) -> VerifyReport:
    """Recalcule les chaînes du journal (ou d’un dossier) : réservé aux auditeurs."""
    return await verify_journal(rt, dossier, who=who)


@router.get("/audit/dossiers/{dossier_id}/export", summary="Exporter le bundle d’audit d’un dossier",
            response_class=Response,
            responses={200: {"content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "Le bundle (tar.gz) : événements, lectures, chaîne, ancres, "
                                            "verify.py."}})
async def export(rt: Rt, who: Who, dossier_id: DossierId) -> Response:
    """Le bundle autovérifiable du dossier, en tar.gz : réservé aux auditeurs, inscrit au journal des lectures."""
    instant = now()
    with tempfile.TemporaryDirectory(prefix="export-") as folder:
        out = Path(folder) / f"bundle-{dossier_id}"
        await export_bundle(rt, who, dossier_id, out, instant, instant.astimezone(PARIS).date())
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:gz") as tar:
            tar.add(out, arcname=out.name)
    return Response(packed.getvalue(), media_type="application/gzip", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(out.name)}.tar.gz"})


# --- personal tokens -------------------------------------------------------------------------


class TokenRequest(BaseModel):
    """A new personal token: how long it lasts, and a label to recognise it."""

    days: int = Field(default=30, ge=1, le=TOKEN_DAYS_MAX)
    label: str | None = Field(default=None, max_length=100)


def _own(who: Principal) -> str:
    """The directory's name of the caller: whose tokens these are."""
    return who.person or who.actor.name


@router.get("/tokens", summary="Mes jetons", response_model=list[people.TokenView])
async def tokens(rt: Rt, who: Who) -> list[people.TokenView]:
    """Les jetons personnels de la personne (jamais leur valeur)."""
    return await people.tokens(rt, _own(who), now())


@router.post("/tokens", summary="Créer un jeton", response_model=people.TokenIssued, status_code=201)
async def issue(rt: Rt, who: Who, body: TokenRequest) -> people.TokenIssued:
    """Un nouveau jeton personnel, pour le rôle sous lequel la personne agit ; sa valeur n’est montrée qu’ici."""
    return await people.issue_token(rt, _own(who), body.days, now(), role=who.actor.role,
                                    label=body.label)


@router.delete("/tokens/{token_id}", summary="Révoquer un jeton", response_model=people.TokenView)
async def revoke(rt: Rt, who: Who, token_id: Annotated[str, PathParam(max_length=100)]) -> people.TokenView:
    """Révoque un jeton de la personne ; il ne sert plus à rien, aussitôt."""
    return await people.revoke_token(rt, who, token_id, now())
