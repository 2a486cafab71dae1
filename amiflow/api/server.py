"""Run the API with uvicorn on a runtime of its own (`amiflow serve`, and `amiflow up`'s API process)."""

from __future__ import annotations

import asyncio

from amiflow.bootstrap import NeedTemporal, runtime
from amiflow.settings import Settings

POOL_SIZE = 5  # database connections of the API process


def serve(settings: Settings, host: str, port: int) -> int:
    """Serve until SIGINT or SIGTERM; 0 once stopped cleanly."""
    import uvicorn

    from amiflow.api import create_app

    async def main() -> None:
        async with runtime(settings, NeedTemporal.REQUIRED, pool_size=POOL_SIZE) as rt:
            config = uvicorn.Config(create_app(rt), host=host, port=port, log_config=None, access_log=False,
                                    server_header=False, lifespan="off")
            await uvicorn.Server(config).serve()

    asyncio.run(main())
    return 0
