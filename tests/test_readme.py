"""The lifecycle diagram in the README says what the decider does."""

from __future__ import annotations

import re
from pathlib import Path

from domain.state import LIFECYCLE, Status

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_status_change_of_the_lifecycle_is_drawn() -> None:
    text = README.read_text()
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    drawn = set(re.findall(r"^\s*(\w+) --> (\w+)", diagram, flags=re.M))
    for source, targets in LIFECYCLE.items():
        for target in targets:
            if target in (Status.WITHDRAWN, Status.CLOSED):
                continue  # drawn once from the composite "open" state
            name = "[*]" if source is Status.NEW else source.value
            wanted = (name, target.value)
            assert wanted in drawn or (source is Status.NEW and "[*] --> draft" in diagram), wanted
    assert ("open", "withdrawn") in drawn and ("open", "closed") in drawn
    # Nothing drawn that the decider does not do.
    allowed = {(s.value, t.value) for s, ts in LIFECYCLE.items() for t in ts}
    for arrow in drawn:
        assert arrow in allowed or arrow[0] == "open", arrow


def test_the_readme_gives_every_command_with_its_options() -> None:
    """The README's table of `dossier do` commands is the code's: name, options (required or not), role."""
    from amiflow.services import commands
    from domain.decider import PERMISSIONS

    text = README.read_text()
    for name in commands.typed_commands():
        spec = commands.spec(name)
        options = " ".join(("" if o.required else "[") + f"--{o.name} {o.kind.upper()}" + ("" if o.required else "]")
                           for o in spec.options)
        row = f"| `{name}` ({spec.label}) | {'`' + options + '`' if options else '—'} | {PERMISSIONS[name].label} |"
        assert row in text, row
