"""`amiflow people …` and `amiflow tokens …` as an operator types them, against a real PostgreSQL (no
Temporal needed): exit 0 done, 1 refused with a French reason, 2 usage error; the token on the last
line, and never again."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from amiflow.services import people as people_service
from journal.keys import Keyring
from journal.postgres import PostgresStore, app_url

ROOT = Path(__file__).resolve().parent.parent


async def test_people_and_tokens_from_the_command_line(database: str, tmp_path: Path) -> None:
    Keyring.open(tmp_path / "data", create=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AMIFLOW_")},
           "AMIFLOW_DATA_DIR": str(tmp_path / "data"), "AMIFLOW_DATABASE_URL": app_url(database)}

    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "amiflow.cli", *args, cwd=ROOT, env=env,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 120)
        return process.returncode or 0, out.decode(), err.decode()

    # Two invocations at once: a person with two roles, and a refused one (staff names its call).
    (code, out, err), (refused, _, why) = await asyncio.gather(
        cli("people", "add", "amelie", "--role", "staff", "--call", "hdf-pmcb-reemploi", "--call",
            "normandie-crec-2018", "--email", "Amelie@Region.fr"),
        cli("people", "add", "bruno", "--role", "staff"))
    assert code == 0 and "staff@hdf-pmcb-reemploi, staff@normandie-crec-2018" in out, err
    assert refused == 1 and "nomme son appel (--call APPEL)" in why and "Traceback" not in why
    code, out, err = await cli("tokens", "issue", "amelie", "--days", "7", "--label", "export")
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    token_id = out.split()[1]
    assert token_id.startswith("tok-") and len(token) >= 43 and token not in out.strip().splitlines()[0]
    store = PostgresStore.from_url(app_url(database), pool_size=1)
    try:  # the token printed is the one stored (by its digest), in the person's only role
        stored = await store.token_by_digest(people_service.digest(token))
        assert stored is not None and (stored.id, stored.name, stored.role) == (token_id, "amelie", "staff")
    finally:
        await store.dispose()
    code, out, err = await cli("tokens", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["id"] == token_id and listed["state"] == "active" and token not in out
    code, out, err = await cli("tokens", "revoke", token_id)
    assert code == 0 and "révoqué" in out, err
    (code, out, _), (unknown, _, why), (usage, _, _), (invited, link, said) = await asyncio.gather(
        cli("people", "list", "--json"), cli("people", "remove", "inconnu"), cli("tokens", "issue"),
        cli("people", "invite", "amelie", "--days", "3", "--json"))
    assert invited == 0, said
    sent = json.loads(link)
    assert sent["email"] == "amelie@region.fr" and "/auth/invitation/" in sent["link"], sent
    (mail,) = (tmp_path / "data" / "maildrop").glob("invitation-*.eml")  # where the link went
    assert sent["sent_by"] == f"dépôt {tmp_path / 'data' / 'maildrop'}"
    assert sent["link"].rsplit("/", 1)[1] in mail.read_text(encoding="utf-8").replace("=\n", "")
    assert [p["name"] for p in json.loads(out)] == ["amelie"] and json.loads(out)[0]["email"] == "amelie@region.fr"
    assert unknown == 1 and "« inconnu » n’est pas dans l’annuaire" in why
    assert usage == 2
