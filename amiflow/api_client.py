"""The service functions the command line uses, over the HTTP API (/api/v1/) with a personal token:
the same names and arguments as amiflow/services (less the runtime), the same view models parsed from
the API's JSON. The token is who acts (the `who` arguments are not sent); the API decides everything,
and its refusals (problem+json) come back as the services' typed errors with the API's French `detail`."""

from __future__ import annotations

import hashlib
import io
import mimetypes
import shutil
import tarfile
import tempfile
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx
import yaml
from pydantic import BaseModel, TypeAdapter

from amiflow.services.audit import VerifyReport
from amiflow.services.errors import NotFound, ReadRefused, ServiceError
from amiflow.services.people import TokenIssued, TokenView
from amiflow.services.principal import Principal
from amiflow.services.views import (
    AttachView,
    CallView,
    CommandSpec,
    DossierPage,
    DossierView,
    HistoryView,
    TimelineView,
)
from domain.access import Role
from domain.errors import DomainError, InvalidCommand
from domain.state import DocumentRef
from workflows.call import ExtensionResult
from workflows.dossier import CommandResult

M = TypeVar("M", bound=BaseModel)
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class Unreachable(DomainError):
    """The API did not answer."""

    code = "unreachable"


def refusal(answer: httpx.Response) -> DomainError:
    """The typed error of an API refusal: its French `detail` and the rules' `code`."""
    try:
        body = answer.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail:
        detail = f"l’API a répondu {answer.status_code} {answer.reason_phrase}."
    if answer.status_code == 404:
        return NotFound(detail)
    if code == "read_refused":
        return ReadRefused(detail)
    return ServiceError(detail, code if isinstance(code, str) else None)


class ApiClient:
    """The API at `url` (e.g. http://127.0.0.1:8235), as the person whose token it is."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url + "/api/v1", timeout=TIMEOUT,
                                       headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            answer = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"API injoignable à {self.url} ({type(exc).__name__}) : l’adresse est-elle juste, "
                              "le service tourne-t-il ?") from None
        if answer.status_code >= 400:
            raise refusal(answer)
        return answer

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = await self._send(method, path, **kwargs)
        try:
            return answer.json()
        except ValueError:
            raise Unreachable(f"{self.url} n’a pas répondu en JSON : est-ce bien l’API d’amiflow ?") from None

    async def _model(self, kind: type[M], method: str, path: str, **kwargs: Any) -> M:
        return kind.model_validate(await self._call(method, path, **kwargs))

    # --- calls ---------------------------------------------------------------------------------

    async def calls(self) -> list[CallView]:
        return TypeAdapter(list[CallView]).validate_python(await self._call("GET", "/calls"))

    async def extend(self, who: Principal | None, call_id: str, phase_id: str, until: datetime) -> ExtensionResult:
        return await self._model(ExtensionResult, "POST", f"/calls/{_seg(call_id)}/phases/{_seg(phase_id)}/extension",
                                 json={"until": until.isoformat()})

    # --- dossiers ------------------------------------------------------------------------------

    async def listing(self, now: datetime, call_id: str | None = None, status: str | None = None,
                      phase_id: str | None = None, overdue: bool = False, after: str | None = None,
                      limit: int | None = None, *, tab: str | None = None, order: str = "id") -> DossierPage:
        params = {k: v for k, v in {"call": call_id, "status": status, "phase": phase_id, "after": after,
                                    "limit": limit, "tab": tab, "sort": order}.items() if v is not None}
        if overdue:
            params["overdue"] = "true"
        return await self._model(DossierPage, "GET", "/dossiers", params=params)

    async def show(self, who: Principal | None, dossier_id: str, now: datetime, as_of: datetime | None = None,
                   all_deadlines: bool = False) -> DossierView:
        params: dict[str, str] = {"as_of": as_of.isoformat()} if as_of else {}
        if all_deadlines:
            params["all"] = "true"
        return await self._model(DossierView, "GET", f"/dossiers/{_seg(dossier_id)}", params=params)

    async def history(self, who: Principal | None, dossier_id: str, now: datetime,
                      bodies: bool = False) -> HistoryView:
        return await self._model(HistoryView, "GET", f"/dossiers/{_seg(dossier_id)}/history",
                                 params={"bodies": "true"} if bodies else {})

    async def timeline(self, who: Principal | None, dossier_id: str, now: datetime) -> TimelineView:
        return await self._model(TimelineView, "GET", f"/dossiers/{_seg(dossier_id)}/timeline")

    async def available(self, who: Principal | None, dossier_id: str, now: datetime) -> list[CommandSpec]:
        found = await self._call("GET", f"/dossiers/{_seg(dossier_id)}/commands")
        return TypeAdapter(list[CommandSpec]).validate_python(found)

    async def command(self, who: Principal | None, dossier_id: str, name: str,
                      options: dict[str, str]) -> CommandResult:
        return await self._model(CommandResult, "POST", f"/dossiers/{_seg(dossier_id)}/commands/{_seg(name)}",
                                 json=options)

    async def submit(self, who: Principal | None, call_id: str, file: Path, now: datetime) -> CommandResult:
        """The dossier file (YAML) sent as the JSON the API takes; the API checks it."""
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InvalidCommand(f"{file} n’est pas un YAML lisible : {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise InvalidCommand(f"{file} n’est pas un dossier (call, phase, reference, content).")
        if data.get("call") != call_id:  # as the in-process submission says it
            raise InvalidCommand(f"{file} est un dossier pour l’appel « {data.get('call')} », pas « {call_id} ».")
        return await self._model(CommandResult, "POST", "/dossiers", json=data)

    async def attach(self, who: Principal | None, dossier_id: str, file: Path) -> AttachView:
        """The file uploaded (multipart, streamed from disk); the API checks its size, count and type."""
        media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        with file.open("rb") as data:
            return await self._model(AttachView, "POST", f"/dossiers/{_seg(dossier_id)}/documents",
                                     files={"file": (file.name, data, media_type)})

    async def document(self, who: Principal | None, dossier_id: str, document_id: str,
                       now: datetime) -> tuple[DocumentRef, bytes]:
        """The document's bytes and what the API says of it (its name, its media type)."""
        answer = await self._send("GET", f"/dossiers/{_seg(dossier_id)}/documents/{_seg(document_id)}")
        disposition = answer.headers.get("content-disposition", "")
        name = unquote(disposition.partition("filename*=UTF-8''")[2]) or document_id
        data = answer.content
        return DocumentRef(id=document_id, name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                           media_type=answer.headers.get("x-amiflow-media-type", "application/octet-stream")), data

    # --- audit (auditors) -----------------------------------------------------------------------

    async def verify(self, dossier_id: str | None = None, anchors: Path | None = None) -> VerifyReport:
        """The chains recomputed by the server (the anchors kept elsewhere are the command line's: `anchors`
        is refused before this is called)."""
        params = {"dossier": dossier_id} if dossier_id is not None else {}
        return await self._model(VerifyReport, "GET", "/audit/verify", params=params)

    async def export(self, who: Principal | None, dossier_id: str, out: Path, now: datetime,
                     today: date) -> dict[str, Any]:
        """The dossier's bundle (tar.gz from the API) unpacked into `out`, a new folder; the summary counted
        from its files, as the in-process export gives it."""
        if out.exists():  # before asking: an export is logged as a read
            raise InvalidCommand(f"{out} existe déjà : choisissez un autre dossier de sortie.")
        answer = await self._send("GET", f"/audit/dossiers/{_seg(dossier_id)}/export")
        unpack_bundle(answer.content, out)
        return bundle_summary(dossier_id, out)

    # --- one's own tokens ----------------------------------------------------------------------

    async def tokens(self, name: str | None = None, now: datetime | None = None) -> list[TokenView]:
        return TypeAdapter(list[TokenView]).validate_python(await self._call("GET", "/tokens"))

    async def issue_token(self, name: str | None, days: int, now: datetime, role: Role | None = None,
                          label: str | None = None) -> TokenIssued:
        return await self._model(TokenIssued, "POST", "/tokens", json={"days": days, "label": label})


def _seg(text: str) -> str:
    """One path segment, quoted."""
    from urllib.parse import quote

    return quote(text, safe="")


def unpack_bundle(packed: bytes, out: Path) -> None:
    """Unpack an export bundle (tar.gz of one folder) into the new folder `out`. Only plain files and
    folders under the bundle's one top folder are taken: an absolute path, a `..`, a link or a device
    refuses the whole bundle, and nothing is left behind."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidCommand(f"Bundle reçu illisible ({type(exc).__name__}) : est-ce bien l’API d’amiflow ?") from None
    with tar:
        members = tar.getmembers()
        tops = {PurePosixPath(m.name).parts[0] if PurePosixPath(m.name).parts else "" for m in members}
        for member in members:
            path = PurePosixPath(member.name)
            why = ("chemin absolu" if path.is_absolute() or member.name.startswith(("/", "\\"))
                   else "« .. » dans le chemin" if ".." in path.parts or "\\" in member.name
                   else "lien" if member.issym() or member.islnk()
                   else "ni fichier ni dossier" if not (member.isfile() or member.isdir())
                   else "hors du dossier du bundle" if len(tops) != 1 or (member.isfile() and len(path.parts) < 2)
                   else None)
            if why is not None:
                raise InvalidCommand(f"Bundle reçu refusé : « {member.name[:200]} » ({why}) ; rien n’a été écrit.")
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
        try:
            for member in members:
                inner = PurePosixPath(member.name).parts[1:]
                target = staging.joinpath(*inner)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                with source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
            staging.rename(out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def bundle_summary(dossier_id: str, out: Path) -> dict[str, Any]:
    """What `amiflow.audit.export` says of a bundle, counted from its files."""

    def lines(name: str) -> int:
        path = out / name
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) if path.exists() else 0

    return {"dossier_id": dossier_id, "out": str(out), "events": lines("events.jsonl"), "reads": lines("reads.jsonl"),
            "chain": lines("chain.jsonl"), "anchors": lines("anchors.jsonl"),
            "temporal_history": (out / "temporal-history.json").exists()}
