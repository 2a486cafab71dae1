"""The hostile-input corpus (tests/hostile/*.yaml, described in its README): every case is refused with
its code and a French message, by the domain's checks alone, then — the whole corpus — through the
service layer on a real stack (Temporal dev server, PostgreSQL), and a few through the `amiflow` program.
Nothing is written (journal, projections, outbox, read log, vault, workflows), and the dossier still
answers afterwards. Also: what a client of Temporal sends past the service layer is refused by the
dossier's workflow before it enters history, and old journals still load."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter
from sqlalchemy import select, text
from temporalio.service import RPCError

from amiflow import dossiers as gateway
from amiflow.bootstrap import Runtime
from amiflow.catalogue import load_call, load_dossier
from amiflow.services import NotFound, Principal, commands
from amiflow.services import calls as call_service
from amiflow.services import dossiers as dossier_service
from amiflow.settings import Settings
from domain import Actor, DossierState, Event, HolderType, Role, decide, dossier_id, replay
from domain.commands import AssignReviewers, Command, StartDraft, UpdateDraft
from domain.errors import DomainError
from domain.events import DossierWithdrawn
from domain.inputs import check_attachment, check_command
from domain.state import DocumentRef, DossierContent, is_dossier_id
from domain.text import visible
from journal.schema import outbox
from tests import dates
from tests.conftest import Stack
from tests.test_cli_stack import EXAMPLE, PMCB_ID, Run, cli, no_workflow, pmcb_file  # noqa: F401 - fixtures, by name
from tests.test_deadline_timers import eventually
from tests.test_decider_transitions import CONTENT, HOLDER, PMCB, PMCB_EXAMPLE, T0
from workflows.dossier import DossierWorkflow

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "hostile"
CALL_FILE = ROOT / "deploy" / "calls" / "hdf-pmcb-reemploi.yaml"
CALL_ID = "hdf-pmcb-reemploi"


@dataclass(frozen=True)
class Case:
    """One hostile input, as the corpus writes it (README in tests/hostile/)."""

    family: str
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.family}/{self.data['id']}"

    @property
    def expect(self) -> dict[str, str]:
        expected: dict[str, str] = self.data["expect"]
        return expected

    def api(self) -> dict[str, Any]:
        """The request the HTTP API will receive for this case."""
        if "api" in self.data:
            request: dict[str, Any] = self.data["api"]
            return request
        if "submit" in self.data:  # the dossier file, as JSON (tests/test_hostile_api.py writes it)
            return {"method": "POST", "path": "/api/v1/dossiers", "body": self.data["submit"]}
        if "attach" in self.data:  # multipart upload of a file of that size
            return {"method": "POST", "path": "/api/v1/dossiers/{dossier}/documents",
                    "body": {"file": {"size": self.data["attach"]["size"]}}}
        return {"method": "POST", "path": f"/api/v1/dossiers/{{dossier}}/commands/{self.data['command']}",
                "body": self.data.get("options", {})}


def expand(value: Any) -> Any:
    """The corpus's generators ($repeat, $concat, $list, $map) made into values."""
    if isinstance(value, dict):
        times = value.get("times", 1)
        if "$repeat" in value:
            return expand(value["$repeat"]) * times
        if "$concat" in value:
            return "".join(expand(v) for v in value["$concat"])
        if "$list" in value:
            items = [str(expand(value["$list"])).replace("{i}", str(i)) for i in range(times)]
            return ",".join(items) if "join" in value else items
        if "$map" in value:
            keys = [str(expand(value["$map"])).replace("{i}", str(i)) for i in range(times)]
            item = expand(value["value"])
            return ",".join(f"{k}={item}" for k in keys) if "join" in value else dict.fromkeys(keys, item)
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def corpus() -> list[Case]:
    """Every case of every family."""
    found = []
    for path in sorted(CORPUS.glob("*.yaml")):
        family = yaml.safe_load(path.read_text(encoding="utf-8"))
        found += [Case(family["family"], case) for case in family["cases"]]
    return found


CASES = corpus()
# The HTTP API's own refusals at its edge (a body too large, not JSON…): no command, file or document
# for the domain or the services to check (tests/test_hostile_api.py sends them).
HTTP_ONLY = [c for c in CASES if not {"command", "submit", "attach", "call"} & set(c.data)]
RULES_CASES = [c for c in CASES if c not in HTTP_ONLY]


def _patched(base: Path, patch: dict[str, Any]) -> Any:
    data = yaml.load(base.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # noqa: S506 - builds no objects
    for dotted, value in expand(patch).items():
        *parents, last = dotted.split(".")
        target = data
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if value is None:
            del target[key]
        else:
            target[key] = value
    return data


# YAML reads no raw C0/C1 control, DEL or line separators: they are written as escapes (as a JSON text).
_UNREADABLE = re.compile("[\x7f-\x9f\u2028\u2029]")


def write_file(spec: dict[str, Any], base: Path, path: Path) -> Path:
    """A dossier or call file from a case: `raw` text, `raw_latin1`, or `patch` over a shipped file."""
    if "raw" in spec:
        path.write_text(spec["raw"], encoding="utf-8")
    elif "raw_latin1" in spec:
        path.write_bytes(spec["raw_latin1"].encode("latin-1"))
    elif spec.get("format") == "yaml":
        path.write_text(yaml.safe_dump(_patched(base, spec["patch"]), allow_unicode=True, width=10**9),
                        encoding="utf-8")
    else:
        body = json.dumps(_patched(base, spec.get("patch", {})), ensure_ascii=False)
        path.write_text(_UNREADABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", body), encoding="utf-8")
    return path


def _options(case: Case) -> dict[str, Any]:
    options: dict[str, Any] = expand(case.data.get("options", {}))
    return options


def _existing(spec: dict[str, Any]) -> DossierState:
    prior = spec.get("existing", {"count": 0, "size": 0})
    docs = tuple(DocumentRef(id=f"doc-{i:016x}", name=f"piece-{i}.pdf", sha256="0" * 64, size=prior["size"],
                             media_type="application/pdf") for i in range(prior["count"]))
    return DossierState(documents=docs)


def refused_by_the_domain(case: Case, tmp_path: Path) -> DomainError:
    """The refusal of the case by the checks every entry point shares (no stack)."""
    data = case.data
    try:
        if "call" in data:
            load_call(write_file(data["call"], CALL_FILE, tmp_path / "appel.yaml"))
        elif "submit" in data:
            Actor.parse(expand(data["as"]))
            load_dossier(write_file(data["submit"], EXAMPLE, tmp_path / "dossier.json"))
        elif "attach" in data:
            check_attachment(_existing(data["attach"]), data["attach"]["size"], data["attach"].get("name"))
        else:
            actor = Actor.parse(expand(data["as"]))
            if "dossier" in data:
                assert not is_dossier_id(data["dossier"])
                return NotFound(f"Dossier inconnu « {visible(data['dossier'])} ».")
            check_command(DossierState(), commands.build(data["command"], _options(case)), actor)
    except DomainError as exc:
        return exc
    raise AssertionError(f"{case.id} accepted")


def _check(case: Case, exc: DomainError) -> None:
    assert exc.code == case.expect["code"], (case.id, exc.code, exc.message)
    assert case.expect["message"] in exc.message, (case.id, exc.message)


def test_the_corpus_has_at_least_100_cases_each_with_its_entry_and_expected_refusal() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)
    for case in CASES:
        assert set(case.data["entry"]) <= {"cli", "api", "file"} and case.data["entry"], case.id
        assert case.expect["code"] and case.expect["message"], case.id
        if "api" in case.data["entry"]:
            assert {"method", "path"} <= set(case.api()) and {"body", "raw", "raw_latin1"} & set(case.api()), case.id
        if "expect_api" in case.data:  # the API's edge refuses it with its own words
            assert "api" in case.data["entry"] or "submit" in case.data, case.id


@pytest.mark.parametrize("case", RULES_CASES, ids=lambda c: c.id)
def test_each_hostile_input_is_refused_by_the_domain_checks(case: Case, tmp_path: Path) -> None:
    _check(case, refused_by_the_domain(case, tmp_path))


# --- the whole corpus through the service layer, on the real stack ------------------------------------


async def _written(stack: Stack) -> dict[str, list[Any]]:
    """Everything a refused input must leave as it was."""
    async with stack.engine.connect() as conn:
        tables: dict[str, list[Any]] = {
            t: [tuple(r) for r in await conn.execute(text(f"select * from {t} order by 1, 2"))]  # noqa: S608
            for t in ("events", "dossiers", "outbox", "reads")}
    tables["vault"] = sorted(str(p.relative_to(stack.vault.root)) for p in stack.vault.root.rglob("*"))
    return tables


async def delivered(stack: Stack, ident: str, *kinds: str) -> None:
    """The dossier's notices of these kinds are written and delivered: the outbox holds still (a notice
    is written and sent by activities after the command's answer)."""
    async with stack.engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.kind, outbox.c.delivered_at)
                                   .where(outbox.c.dossier_id == ident))).all()
    assert set(kinds) <= {r.kind for r in rows} and all(r.delivered_at is not None for r in rows), rows


async def _through_the_services(rt: Runtime, case: Case, tmp_path: Path) -> list[str]:
    """Give the case to the service layer as the CLI and the API do; returns the dossier ids it could
    have started."""
    data = case.data
    if "call" in data:
        found = call_service.catalogue([write_file(data["call"], CALL_FILE, tmp_path / "appel.yaml")])
        assert not found.calls and len(found.refused) == 1, case.id
        raise found.refused[0]
    who = Principal.operator(expand(data["as"]))
    if "submit" in data:
        path = write_file(data["submit"], EXAMPLE, tmp_path / "dossier.json")
        reference = expand(data["submit"].get("patch", {})).get("reference")
        would = [dossier_id(CALL_ID, reference)] if isinstance(reference, str) and re.search(r"\w", reference) else []
        await dossier_service.submit(rt, who, CALL_ID, path, datetime.now(UTC))
        return would
    if "attach" in data:
        big = tmp_path / data["attach"].get("name", "piece.pdf")
        with big.open("wb") as out:  # sparse: the size is stated, no disk is used
            out.truncate(data["attach"]["size"])
        await dossier_service.attach(rt, who, PMCB_ID, big)
        return []
    await dossier_service.command(rt, who, data.get("dossier", PMCB_ID), data["command"], _options(case))
    return []


@pytest.fixture
async def rt(stack: Stack, cli: Run) -> Runtime:  # noqa: F811 - the fixture imported above
    """The service layer on the test's stack (its calls started by the `cli` fixture), with the example
    dossier submitted and acknowledged."""
    settings = Settings(data_dir=stack.data_dir, namespace=stack.namespace, database_url=stack.database_url,
                        task_queue=stack.task_queue)
    runtime = Runtime(settings, stack.store, stack.keys, stack.vault, stack.client)
    result = await dossier_service.submit(runtime, Principal.operator("holder:acme"), CALL_ID, EXAMPLE,
                                          datetime.now(UTC))
    assert result.dossier_id == PMCB_ID
    await dossier_service.command(runtime, Principal.operator("staff:amelie"), PMCB_ID, "acknowledge", {})
    await eventually(delivered, stack, PMCB_ID, "submitted", "acknowledged")
    return runtime


async def test_the_corpus_through_the_services_and_the_cli_writes_nothing(
        rt: Runtime, stack: Stack, cli: Run, tmp_path: Path) -> None:  # noqa: F811 - the fixture imported above
    before = await _written(stack)
    would_start: list[str] = []
    service_cases = [c for c in RULES_CASES if "existing" not in c.data.get("attach", {})]
    for case in service_cases:
        with pytest.raises(DomainError) as info:
            would_start += await _through_the_services(rt, case, tmp_path)
        _check(case, info.value)
    assert len(service_cases) >= 100

    for case in [c for c in CASES if c.data.get("subprocess")]:
        code, out, err = await cli(*_argv(case, tmp_path))
        assert code == 1, (case.id, out, err)
        assert case.expect["message"] in err and "Traceback" not in err, (case.id, err)

    assert await _written(stack) == before
    for ident in would_start:
        assert await no_workflow(stack, ident), ident
    shown = await dossier_service.show(rt, Principal.operator("staff:amelie"), PMCB_ID, datetime.now(UTC))
    assert shown.status.value == "acknowledged" and shown.version == 3
    result = await dossier_service.command(rt, Principal.operator("staff:amelie"), PMCB_ID, "request-complement",
                                           {"pieces": "Kbis", "due": dates.due(datetime.now(UTC), 10).arg})
    assert result.version == 4  # and it still takes commands


def _argv(case: Case, tmp_path: Path) -> Iterator[str]:
    data = case.data
    if "submit" in data:
        yield from ("dossier", "submit", "--call", CALL_ID, "--file",
                    str(write_file(data["submit"], EXAMPLE, tmp_path / "cli-dossier.json")))
    elif "attach" in data:
        big = tmp_path / "cli-piece.pdf"
        with big.open("wb") as out:
            out.truncate(data["attach"]["size"])
        yield from ("dossier", "attach", PMCB_ID, str(big))
    else:
        yield from ("dossier", "do", data.get("dossier", PMCB_ID), data["command"])
        for key, value in _options(case).items():
            yield from (f"--{key}", value)
    yield from ("--as", expand(data["as"]))


async def test_a_temporal_client_past_the_services_is_refused_before_history(rt: Runtime, stack: Stack) -> None:
    """The dossier's workflow runs the same checks in its Update validator: a hostile command sent
    straight to Temporal never enters history, and an oversized section leaves no workflow failing."""
    handle = stack.client.get_workflow_handle(PMCB_ID)
    events_before = len([e async for e in handle.fetch_history_events()])
    before = await _written(stack)
    staff = Actor(role=Role.STAFF, name="amelie")
    due = dates.paris_midnight(dates.due(datetime.now(UTC), 10).day)
    hostile: list[tuple[Command, Actor, str]] = [
        (AssignReviewers(reviewers=("rita\nBcc: tous@exemple.fr",), due=due), staff, "invalid_input"),
        (AssignReviewers(reviewers=("rita",), due=due), Actor(role=Role.STAFF, name="amelie\r"), "invalid_input"),
    ]
    # Over the dossier's limits, under Temporal's: an Update over 2 MB would come back in the worker's
    # rejection and fail its workflow task (the service layer refuses it before Temporal, see the corpus).
    content = DossierContent(holder_name="C", holder_type=HolderType.ENTREPRISE, region="HdF",
                             sections={"presentation": "x" * 1_500_000})
    hostile.append((UpdateDraft(content=content), Actor(role=Role.HOLDER, name="acme"), "too_large"))
    for command, actor, code in hostile:
        try:
            await gateway.send(stack.client, PMCB_ID, command, actor)
        except DomainError as exc:
            assert exc.code == code, exc.message
        except RPCError:  # the frontend may refuse the request's size itself: nothing is written either
            assert code == "too_large"
        else:
            raise AssertionError(f"{command.type} accepted")
    assert len([e async for e in handle.fetch_history_events()]) == events_before
    assert (await handle.query(DossierWorkflow.current)).version == 3
    assert await _written(stack) == before


def test_journaled_events_are_not_checked_again() -> None:
    """A journal written before the limits (a reviewer's name with a line break, a bidi character in a
    text) still loads and replays: only input is checked."""
    start = StartDraft(call=PMCB, phase_id="unique", reference=PMCB_EXAMPLE.reference, content=CONTENT)
    events = decide(DossierState(), start, HOLDER, T0)
    old = [events[0].model_copy(update={"actor": Actor(role=Role.HOLDER, name="acme\nBcc x")}),
           DossierWithdrawn(actor=Actor(role=Role.HOLDER, name="acme\u202e"), at=T0, reason="\0" + "x" * 6000)]
    stored = [json.loads(TypeAdapter(Event).dump_json(e)) for e in old]
    state = replay(TypeAdapter(Event).validate_python(e) for e in stored)
    assert state.closed_reason.startswith("\0") and state.holder == "acme\nBcc x"
    with pytest.raises(DomainError) as refused:
        decide(DossierState(), start, Actor(role=Role.HOLDER, name="acme\nBcc x"), T0)
    assert refused.value.code == "invalid_input"
