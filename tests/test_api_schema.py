"""Schemathesis against the live API (a real uvicorn on a free port, on the real stack): for staff, a
holder and a reviewer, a bounded number of generated requests per operation. No answer is a 5xx, and
every answer conforms to the OpenAPI document (status, content type, headers, body)."""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import checks

from tests.test_api import served, under_review  # noqa: F401 - the fixture

EXAMPLES = 4  # per operation and person: 22 operations x 3 people x 4, about 260 requests
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance]


def fuzz(url: str, token: str, known: dict[str, str]) -> list[str]:
    """Run every operation's examples with this token; the failures, described."""
    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        strategy = operation.as_strategy()
        if names and set(names) <= set(known) and "document_id" not in names:  # half the time, a real dossier
            strategy = strategy | operation.as_strategy(path_parameters={n: known[n] for n in names})

        @hypothesis.given(case=strategy)
        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            try:
                case.validate_response(response, checks=CHECKS)
            except AssertionError as exc:
                failures.append(f"{case.operation.label}: {str(exc)[:600]}")

        run()
    return failures


async def test_the_live_api_conforms_to_its_openapi_document(served: Any) -> None:  # noqa: F811
    w, url = served
    ident = await under_review(w)
    known = {"dossier_id": ident, "call_id": "hdf-pmcb-reemploi", "phase_id": "unique"}
    for who in ("amelie", "acme", "rita"):
        failures = await asyncio.to_thread(fuzz, url, w.tokens[who], known)
        assert not failures, "\n".join(failures[:10])
