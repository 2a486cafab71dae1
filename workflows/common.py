"""What the dossier and call workflows share: retry policies, named timeouts, the refusal of a
command, and the ids of the patches that keep older histories replaying."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from activities.contracts import GIVE_UP, NOTIFICATION_FAILED, SEND, GiveUpNotices, SendNotices
from domain.errors import DomainError
from domain.notices import Notice

# PostgreSQL down must not lose a transition: retry without limit, at most every 10 s.
JOURNAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)

# A notice's channel refusing it is retried a few times, then the notice is given up on (a dead letter
# staff see with `amiflow notices failed`): 5 attempts over about 8 s (0.5 + 1 + 2 + 4 s between them).
NOTICE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10), maximum_attempts=5,
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
NOTICES_AFTER = "notices-after"  # notices are sent after the command, outside its lock, and may be given up on


def refusal(error: DomainError) -> ApplicationError:
    """A domain refusal as a Temporal failure a client can branch on (`type` is the error code)."""
    details = (error.field,) if error.field else ()  # which input it is about, for a form (`DomainError.field`)
    return ApplicationError(error.message, *details, type=error.code, non_retryable=True)


def untrusted(message: str) -> ApplicationError:
    """A refusal of what a client may not give a workflow (a state, another dossier's id)."""
    return ApplicationError(message, type="Untrusted", non_retryable=True)


def continued_by_itself() -> bool:
    """Whether this run was started by its own workflow's continue-as-new, the only start whose input
    the worker wrote itself. A retry or a cron run also carries a continued run id, with an input a
    client chose: neither is taken (amiflow's workflows have neither retries nor a cron schedule)."""
    info = workflow.info()
    return info.continued_run_id is not None and info.attempt == 1 and not info.cron_schedule


async def send_or_give_up(notices: list[Notice], timeout: timedelta) -> None:
    """Deliver the notices with a bounded retry; when their channel still refuses them, record them as
    dead letters. A failure of the journal itself (the outbox) is not the notices': they are tried
    again, as long as it takes."""
    while True:
        try:
            await workflow.execute_activity(SEND, SendNotices(notices=notices), start_to_close_timeout=timeout,
                                            retry_policy=NOTICE_RETRY)
            return
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type != NOTIFICATION_FAILED:
                workflow.logger.warning("notices not sent (%s): trying again", cause.type)
                continue
            failure = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
            workflow.logger.warning("notices given up on after %s attempts", NOTICE_RETRY.maximum_attempts)
            await workflow.execute_activity(
                GIVE_UP, GiveUpNotices(notices=notices, attempts=NOTICE_RETRY.maximum_attempts or 1,
                                       failure=failure),
                start_to_close_timeout=JOURNAL_WRITE_TIMEOUT, retry_policy=JOURNAL_RETRY,
            )
            return
