"""`amiflow serve`: the HTTP API alone, for production (uvicorn), on the stack the settings name."""

from __future__ import annotations

from typing import Annotated

import typer

from amiflow.clikit import command_class

command = command_class()


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Adresse d’écoute.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port d’écoute.", min=1, max=65535)] = 8000,
) -> None:
    """Sert l’API HTTP (/api/v1/, document OpenAPI /api/v1/openapi.json) jusqu’à Ctrl-C."""
    from amiflow.api.server import serve
    from amiflow.logs import configure

    configure(ctx.obj.log_format)
    typer.echo(f"Back office   http://{host}:{port}/")
    typer.echo(f"API           http://{host}:{port}/api/v1/ (OpenAPI : /api/v1/openapi.json)")
    raise typer.Exit(serve(ctx.obj, host, port))


def register(app: typer.Typer) -> None:
    """Add `serve` to the `amiflow` command."""
    app.command("serve", cls=command)(serve_command)
