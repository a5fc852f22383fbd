"""Commitments written back to the CRM as tasks, exactly once whatever fails (``leadprep sync``,
and the end of ``prep``, ``send`` and ``commit``).

Every open commitment gets a row in the state file with its task's key. A sync claims the rows
no other run holds, then: looks up by key the creates whose answer was lost (allowing the CRM's
search time to catch up: ``settle``), creates the rest in batches (each batch marked as attempted
before it goes), brings written tasks in step with their commitment (closed with the outcome
when followed up), and deletes the task of a commitment replaced on the review page. A refusal
(validation, permission, a deleted deal) is recorded once with the CRM's words and not tried
again until the commitment changes. The CRM being down changes nothing recorded: the next sync
picks up where this one stopped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadprep.config import Config
from leadprep.errors import CRMAuthError, CRMUnavailableError
from leadprep.http import chunks
from leadprep.model import Commitment
from leadprep.store import Store
from leadprep.store.tasks import TaskRow
from leadprep.tasks import LostAnswer, Refused, TaskSpec, TaskWriter, Written, task_for, task_key

log = logging.getLogger(__name__)

SETTLE = timedelta(seconds=60)  # how long a CRM's search may take to show a task just created
QUICK_TIMEOUT = 5.0  # seconds the one try right after a commitment may take


@dataclass
class SyncReport:
    """What a sync did (or, dry, would do)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    found: int = 0  # creates whose answer was lost, found in the CRM by their key
    waiting: int = 0  # lost answers the CRM's search may not show yet: looked for next time
    refused: list[str] = field(default_factory=list)  # "#12: the CRM's words"
    planned: list[str] = field(default_factory=list)  # dry run: what would be written
    unreachable: str | None = None  # the CRM did not answer: the rest waits for the next sync

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted + self.found


@dataclass
class _Plan:
    creates: list[tuple[TaskRow, TaskSpec]] = field(default_factory=list)
    unsure: list[tuple[TaskRow, TaskSpec | None]] = field(default_factory=list)  # lost answers
    updates: list[tuple[TaskRow, TaskSpec]] = field(default_factory=list)
    deletes: list[TaskRow] = field(default_factory=list)
    # the id now belongs to another commitment (replaced): the old task goes, a new one comes
    replaced: list[tuple[TaskRow, TaskSpec]] = field(default_factory=list)


def sync(
    store: Store,
    writer: TaskWriter,
    manager_of: Callable[[str], str | None],
    *,
    dry_run: bool = False,
    settle: timedelta = SETTLE,
) -> SyncReport:
    """Bring the CRM's tasks in step with the commitments; see the module's docstring."""
    commitments = {c.id: c for c in store.commitments.all()}
    if not dry_run:
        opened = [(c.id, task_key(c)) for c in commitments.values() if c.status == "open"]
        store.tasks.queue(opened, writer.crm)
    report = SyncReport()
    if dry_run:
        return _dry(store, commitments, manager_of, report)
    token = uuid.uuid4().hex
    rows = store.tasks.claim(token)
    try:
        plan = _plan(rows, commitments, manager_of)
        _replace(store, writer, plan, report)
        _resolve(store, writer, plan, report, settle)
        _create(store, writer, plan.creates, report)
        _update(store, writer, plan.updates, report)
        _delete(store, writer, plan.deletes, report)
    except (CRMUnavailableError, CRMAuthError) as exc:
        report.unreachable = exc.message
        log.info("task write-back stopped: %s", exc.message)
    finally:
        store.tasks.release(token)
    return report


def _plan(
    rows: list[TaskRow],
    commitments: dict[int, Commitment],
    manager_of: Callable[[str], str | None],
) -> _Plan:
    plan = _Plan()
    for row in rows:
        commitment = commitments.get(row.commitment_id)
        if commitment is None:  # replaced on the review page: its task goes
            if row.state == "cancelled":
                continue
            if row.remote_id:
                plan.deletes.append(row)
            elif row.attempted_at:
                plan.unsure.append((row, None))
            continue
        spec = task_for(commitment, manager_of(commitment.rep_email))
        if row.key != spec.key:
            plan.replaced.append((row, spec))
            continue
        if row.state == "refused" and row.written_hash == spec.digest:
            continue  # refused as it is: not again until the commitment changes
        if row.remote_id is None:
            (plan.unsure if row.attempted_at else plan.creates).append((row, spec))
        elif row.written_hash != spec.digest:
            plan.updates.append((row, spec))
    return plan


def _resolve(
    store: Store, writer: TaskWriter, plan: _Plan, report: SyncReport, settle: timedelta
) -> None:
    """Creates whose answer was lost: found by key (then kept in step), else created again once
    the CRM's search has had time to show them."""
    if not plan.unsure:
        return
    found = writer.find([row.key for row, _ in plan.unsure])
    now = datetime.now(UTC)
    for row, spec in plan.unsure:
        remote = found.get(row.key)
        if remote is not None:
            report.found += 1
            store.tasks.written(row.commitment_id, remote, "")  # then updated to the spec
            if spec is None:
                plan.deletes.append(_with_remote(row, remote))
            else:
                plan.updates.append((_with_remote(row, remote), spec))
        elif row.attempted_at is not None and now - row.attempted_at < settle:
            report.waiting += 1
        elif spec is None:
            store.tasks.cancelled(row.commitment_id)
        else:
            plan.creates.append((row, spec))


def _replace(store: Store, writer: TaskWriter, plan: _Plan, report: SyncReport) -> None:
    """Delete the task of a commitment that was replaced (found by its key if its create's
    answer was lost), then queue its successor's under the same id."""
    if not plan.replaced:
        return
    lost = [row.key for row, _ in plan.replaced if row.remote_id is None and row.attempted_at]
    found = writer.find(lost) if lost else {}
    old = [row.remote_id or found.get(row.key) for row, _ in plan.replaced]
    if any(old):
        writer.delete([remote for remote in old if remote])
        report.deleted += sum(1 for remote in old if remote)
    for row, spec in plan.replaced:
        store.tasks.rekey(row.commitment_id, spec.key)
        fresh = replace(row, key=spec.key, remote_id=None, written_hash=None, state="queued",
                        attempted_at=None)  # fmt: skip
        plan.creates.append((fresh, spec))


def _with_remote(row: TaskRow, remote: str) -> TaskRow:
    return replace(row, remote_id=remote, written_hash="")


def _create(
    store: Store, writer: TaskWriter, creates: list[tuple[TaskRow, TaskSpec]], report: SyncReport
) -> None:
    for batch in chunks(creates, writer.batch_size):
        ids = [row.commitment_id for row, _ in batch]
        store.tasks.attempting(ids)  # from here the answer may be lost: look before redoing
        try:
            results = writer.create([spec for _, spec in batch])
        except LostAnswer as exc:
            store.tasks.failed(ids, exc.message)
            raise
        for row, spec in batch:
            _record(store, row, spec, results.get(spec.key), report, created=True)


def _update(
    store: Store, writer: TaskWriter, updates: list[tuple[TaskRow, TaskSpec]], report: SyncReport
) -> None:
    for batch in chunks(updates, writer.batch_size):
        results = writer.update([(row.remote_id or "", spec) for row, spec in batch])
        for row, spec in batch:
            _record(store, row, spec, results.get(spec.key), report, created=False)


def _delete(store: Store, writer: TaskWriter, deletes: list[TaskRow], report: SyncReport) -> None:
    for batch in chunks(deletes, writer.batch_size):
        writer.delete([row.remote_id or "" for row in batch])
        for row in batch:
            store.tasks.cancelled(row.commitment_id)
            report.deleted += 1


def _record(
    store: Store,
    row: TaskRow,
    spec: TaskSpec,
    result: Written | Refused | None,
    report: SyncReport,
    *,
    created: bool,
) -> None:
    if isinstance(result, Written):
        store.tasks.written(row.commitment_id, result.remote_id, spec.digest)
        if created:
            report.created += 1
        else:
            report.updated += 1
    elif isinstance(result, Refused):
        store.tasks.refused(row.commitment_id, result.reason, spec.digest)
        report.refused.append(f"#{row.commitment_id}: {result.reason}")
    else:  # the answer named nothing for it: it stays as it was, for the next sync
        store.tasks.failed([row.commitment_id], "the CRM's answer did not include this task")


def _dry(
    store: Store,
    commitments: dict[int, Commitment],
    manager_of: Callable[[str], str | None],
    report: SyncReport,
) -> SyncReport:
    rows = {row.commitment_id: row for row in store.tasks.all()}
    for commitment in commitments.values():
        row = rows.get(commitment.id)
        spec = task_for(commitment, manager_of(commitment.rep_email))
        if (row is None and commitment.status == "open") or (
            row is not None and row.remote_id is None and row.state == "queued"
        ):
            report.planned.append(f"create #{commitment.id}: {spec.subject} (due {spec.due})")
        elif row is not None and row.remote_id and row.written_hash != spec.digest:
            what = "close" if spec.completed else "update"
            report.planned.append(f"{what} #{commitment.id}: task {row.remote_id}")
    for cid, row in rows.items():
        if cid not in commitments and row.remote_id and row.state != "cancelled":
            report.planned.append(f"delete #{cid}: task {row.remote_id} (commitment replaced)")
    return report


def manager_names(config: Config) -> Callable[[str], str | None]:
    """Rep email -> their manager's name, as the teams section has it (``Config.manager_of``)."""

    def name(rep_email: str) -> str | None:
        manager = config.manager_of(rep_email)
        return manager.name if manager else None

    return name


def writer_of(connector: object) -> TaskWriter | None:
    """The connector's task writer, when it has one and write-back is on."""
    make = getattr(connector, "task_writer", None)
    writer: TaskWriter | None = make() if callable(make) else None
    return writer


def said(report: SyncReport, crm: str) -> list[str]:
    """A sync's lines for the terminal."""
    lines = []
    if report.changed or report.waiting:
        parts = [
            f"{n} {what}"
            for n, what in (
                (report.created, "created"),
                (report.updated, "updated or closed"),
                (report.deleted, "deleted (commitment replaced)"),
                (report.found, "found again after a lost answer"),
                (report.waiting, "waiting for the CRM's search to show them"),
            )
            if n
        ]
        lines.append(f"Tasks in {crm}: " + ", ".join(parts) + ".")
    lines += [f"{crm} refused a task: {r}" for r in report.refused]
    if report.unreachable:
        lines.append(
            f"{crm} did not answer ({report.unreachable}); the tasks wait for the next sync."
        )
    return lines


def write_back(
    config: Config, *, quick: bool = False, dry_run: bool = False, state_path: Path | None = None
) -> tuple[SyncReport, str] | None:
    """Sync the configured CRM's tasks, when ``crm.<kind>.write_back.tasks`` is on (None when it
    is off, or the source cannot write tasks). ``quick``: one try with a short timeout, for right
    after a commitment is recorded (whatever does not go then goes with the next sync)."""
    from leadprep.connectors import connector_for

    section = getattr(config.crm, config.crm.kind, None)
    settings = getattr(section, "write_back", None)
    if section is None or settings is None or not settings.tasks:
        return None
    if quick:
        retry = section.retry.model_copy(update={"max_attempts": 1, "timeout": QUICK_TIMEOUT})
        section = section.model_copy(update={"retry": retry})
        crm = config.crm.model_copy(update={config.crm.kind: section})
        config = config.model_copy(update={"crm": crm})
    writer = writer_of(connector_for(config))
    if writer is None:
        return None
    settle = timedelta(seconds=settings.search_settle)
    with Store.open(state_path or config.state_path()) as store:
        report = sync(store, writer, manager_names(config), dry_run=dry_run, settle=settle)
    return report, writer.crm
