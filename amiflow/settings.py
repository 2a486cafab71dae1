"""Where the stack is: one place reads the environment.

`AMIFLOW_DATA_DIR` (default `.amiflow/`) names a local stack started by `amiflow up`; its
`stack.json` says where its Temporal server and database listen. `AMIFLOW_TEMPORAL_ADDRESS`,
`AMIFLOW_NAMESPACE`, `AMIFLOW_DATABASE_URL` and `AMIFLOW_TASK_QUEUE` point at any other deployment
and take precedence. `AMIFLOW_CALLS_DIR` names the folder of call files (default `deploy/calls`).

Sign-in (OpenID Connect): `AMIFLOW_OIDC_ISSUER`, `AMIFLOW_OIDC_CLIENT_ID` and
`AMIFLOW_OIDC_CLIENT_SECRET` name the provider and this relying party's client; under `amiflow up`
they default to the local provider it starts (its secret is in the data directory, never committed).
`AMIFLOW_OIDC_ACR_VALUES` overrides the `acr_values` asked. `AMIFLOW_PUBLIC_URL` is the address
people reach amiflow at, when a proxy stands in front of it; `AMIFLOW_SESSION_SECRET` signs the
session cookies (else a file of the data directory).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATA_DIR = Path(".amiflow")
DEFAULT_TASK_QUEUE = "amiflow-dossiers"
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class Settings:
    """How to reach Temporal and the database, and where local files live."""

    data_dir: Path
    temporal_address: str = "127.0.0.1:7233"
    namespace: str = DEFAULT_NAMESPACE
    database_url: str = ""
    task_queue: str = DEFAULT_TASK_QUEUE
    maildrop: Path | None = None
    smtp_host: str = ""
    log_format: str = "console"  # "json" in production
    calls_dir: Path | None = None  # the call files (AMIFLOW_CALLS_DIR; default deploy/calls)
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_acr_values: str = ""  # AMIFLOW_OIDC_ACR_VALUES; else the provider's first acr_values_supported
    public_url: str = ""  # where people reach amiflow (AMIFLOW_PUBLIC_URL); else the request's own address
    session_secret: str = ""  # AMIFLOW_SESSION_SECRET; else DATA_DIR/session.key, made on first use

    @property
    def stack_file(self) -> Path:
        """The file `amiflow up` writes to say what runs in this data directory."""
        return self.data_dir / "stack.json"

    @property
    def vault_dir(self) -> Path:
        """Where attached documents are kept, sealed (AMIFLOW_VAULT_DIR to share it between machines)."""
        return Path(os.environ.get("AMIFLOW_VAULT_DIR") or self.data_dir / "vault")

    @property
    def mail_dir(self) -> Path:
        """Where notifications are dropped as files when no SMTP server is configured."""
        return self.maildrop or self.data_dir / "maildrop"

    @property
    def idp_dir(self) -> Path:
        """The local OpenID provider's files under `amiflow up`: its client secret, the people it lists."""
        return self.data_dir / "idp"


def load_settings(data_dir: Path | str | None = None) -> Settings:
    """Settings from the data directory's stack file, then the environment (which wins)."""
    env = os.environ
    base = Path(data_dir or env.get("AMIFLOW_DATA_DIR") or DEFAULT_DATA_DIR)
    settings = Settings(data_dir=base)
    stack = settings.stack_file
    if stack.exists():
        info = json.loads(stack.read_text(encoding="utf-8"))
        settings = replace(
            settings,
            temporal_address=info.get("temporal_address", settings.temporal_address),
            namespace=info.get("namespace", settings.namespace),
            database_url=info.get("database_url", settings.database_url),
            task_queue=info.get("task_queue", settings.task_queue),
            oidc_issuer=info.get("idp_url") or "",
            oidc_client_id=info.get("idp_client_id") or "",
        )
        secret = settings.idp_dir / "client_secret"
        if settings.oidc_issuer and secret.exists():
            settings = replace(settings, oidc_client_secret=secret.read_text(encoding="utf-8").strip())
    maildrop = env.get("AMIFLOW_MAILDROP")
    return replace(
        settings,
        temporal_address=env.get("AMIFLOW_TEMPORAL_ADDRESS", settings.temporal_address),
        namespace=env.get("AMIFLOW_NAMESPACE", settings.namespace),
        database_url=env.get("AMIFLOW_DATABASE_URL", settings.database_url),
        task_queue=env.get("AMIFLOW_TASK_QUEUE", settings.task_queue),
        maildrop=Path(maildrop) if maildrop else None,
        smtp_host=env.get("AMIFLOW_SMTP_HOST", ""),
        log_format=env.get("AMIFLOW_LOG_FORMAT", settings.log_format),
        calls_dir=Path(env["AMIFLOW_CALLS_DIR"]) if env.get("AMIFLOW_CALLS_DIR") else None,
        oidc_issuer=env.get("AMIFLOW_OIDC_ISSUER", settings.oidc_issuer),
        oidc_client_id=env.get("AMIFLOW_OIDC_CLIENT_ID", settings.oidc_client_id),
        oidc_client_secret=env.get("AMIFLOW_OIDC_CLIENT_SECRET", settings.oidc_client_secret),
        oidc_acr_values=env.get("AMIFLOW_OIDC_ACR_VALUES", ""),
        public_url=env.get("AMIFLOW_PUBLIC_URL", "").rstrip("/"),
        session_secret=env.get("AMIFLOW_SESSION_SECRET", ""),
    )
