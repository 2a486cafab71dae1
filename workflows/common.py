"""What the dossier and call workflows share: retry policies, named timeouts, the refusal of a
command, and the ids of the patches that keep older histories replaying."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from domain.errors import DomainError

# PostgreSQL down must not lose a transition: retry without limit, at most every 10 s.
JOURNAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)

# A batch takes milliseconds: the timeout only bounds how long a lost attempt delays the retry.
JOURNAL_WRITE_TIMEOUT = timedelta(seconds=10)
# Reading a whole dossier back (open every event, replay): more rows than a write, still one query.
JOURNAL_READ_TIMEOUT = timedelta(seconds=30)
# Looking up the open dossiers of a phase: one indexed query over the projection.
OPEN_DOSSIERS_TIMEOUT = timedelta(seconds=30)
# A dossier's notices: outbox rows, then mail-drop files or SMTP.
NOTICES_TIMEOUT = timedelta(seconds=20)
# A call's announcements go to the staff desk by the same outbox; SMTP may be slower to answer.
ANNOUNCE_TIMEOUT = timedelta(seconds=60)
# Asking a call's workflow for its definition: one query (after an extension, one answers the whole
# phase's open dossiers, activities/calls.py), with room for a loaded machine.
CALL_READ_TIMEOUT = timedelta(seconds=30)

# Patches (workflow.patched): a run whose history lacks the marker keeps the code path it recorded.
CALL_FROM_WORKER = "call-from-worker"  # a draft's call is read by the worker, not taken from the client
EXTENSION_FROM_CALL = "extension-from-call"  # a phase extension is read from the call's workflow
TRUSTED_START = "trusted-start"  # a state in the input only from the workflow's own continue-as-new


def refusal(error: DomainError) -> ApplicationError:
    """A domain refusal as a Temporal failure a client can branch on (`type` is the error code)."""
    return ApplicationError(error.message, type=error.code, non_retryable=True)


def untrusted(message: str) -> ApplicationError:
    """A refusal of what a client may not give a workflow (a state, another dossier's id)."""
    return ApplicationError(message, type="Untrusted", non_retryable=True)


def continued_by_itself() -> bool:
    """Whether this run was started by its own workflow's continue-as-new, the only start whose input
    the worker wrote itself. A retry or a cron run also carries a continued run id, with an input a
    client chose: neither is taken (amiflow's workflows have neither retries nor a cron schedule)."""
    info = workflow.info()
    return info.continued_run_id is not None and info.attempt == 1 and not info.cron_schedule
