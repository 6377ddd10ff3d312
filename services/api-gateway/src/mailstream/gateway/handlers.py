"""Accepting sends: decide, record, publish (or schedule), and answer only once Kafka has them.

Concurrent sends share the work (group commit, core.batching.Batcher): the sends that arrive
while a batch is being written go in the next one, which takes their facts in one query each
(emails and API keys mostly from the cache), writes their rows with one statement per table,
produces their records together and commits once Kafka acknowledged every one of them. Each
caller is answered when its batch is done: 200 only after PostgreSQL has its row and Kafka its
record; if Kafka does not acknowledge, the transaction rolls back and nothing is recorded.

The SMTP submission server writes through the same batches (its facts are the token's). The
SendGrid-compatible API's request (`send_many`) is one item of a batch with all its recipients:
their facts, rows and records are taken and written together with the batch's.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from mailstream.core.batching import Batcher
from mailstream.core.logs import log_send
from mailstream.gateway import rules
from mailstream.gateway.adapters.accepting import BAD_INPUT, EmailFacts, RequestRow, ScheduledRow
from mailstream.gateway.caches import Caches
from mailstream.gateway.views import status_view
from mailstream.schemas import SendRequested, encode
from mailstream.schemas.topics import SEND_REQUESTED

log = logging.getLogger("mailstream.gateway.accept")

Record = tuple[str, bytes, bytes]  # topic, key, value
PublishAll = Callable[[Iterable[Record]], Awaitable[None]]

# Namespace of the ids derived from a caller's sendId (uuid5).
SEND_ID_NAMESPACE = uuid.UUID("0b3c8f52-6f7e-4d0c-9a51-2f1b6f1d7e1a")


def send_ids(account_id: int, send_id: str | None) -> tuple[str, str]:
    """(statusId, message id) of a send. With a sendId they are derived from it: if Kafka stored
    a send but its acknowledgement was lost (the caller got 503 and retries with the same
    sendId), the retry publishes the same message id, which the sender delivers only once."""
    if send_id is None:
        return str(uuid.uuid4()), str(uuid.uuid4())
    return (
        str(uuid.uuid5(SEND_ID_NAMESPACE, f"status/{account_id}/{send_id}")),
        str(uuid.uuid5(SEND_ID_NAMESPACE, f"message/{account_id}/{send_id}")),
    )


@dataclass(frozen=True, slots=True)
class SendCommand:
    """One send to one recipient, from the single-send API, a one-off send of an email or a
    trigger rule (trigger_id: the rule; its email must be saved for automation)."""

    email_id: int | None
    to: str
    require_single_send_api: bool
    from_: str | None = None
    send_id: str | None = None
    reply_to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    contact_properties: dict[str, str] = field(default_factory=dict)
    custom_properties: dict[str, Any] = field(default_factory=dict)
    send_at: datetime | None = None
    require_sending_domain: bool = False
    trigger_id: str | None = None
    # A whole message built by the caller (the SendGrid-compatible API): sent as it is (the
    # renderer tracks and signs it), TRANSACTIONAL; email_id None unless it was a template's.
    raw_message: bytes | None = None
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    batch_id: str | None = None  # a SendGrid batch (docs/sendgrid.md#batches): kept with a scheduled send


# The rules' view of a whole message that is no email's: TRANSACTIONAL, as the SMTP API's.
WHOLE_MESSAGE = rules.EmailFacts(state="PUBLISHED", single_send_api=True, subscription_type="TRANSACTIONAL")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A decided send, ready to be written: its row, what it does to the contact, and its record
    (published now, or kept for its sendAt)."""

    row: RequestRow
    contact: dict[str, str] | None = None  # properties to merge ({} only creates the contact)
    event: SendRequested | None = None
    scheduled: bool = False
    batch_id: str | None = None  # the scheduled send's SendGrid batch


@dataclass(frozen=True, slots=True)
class _Send:
    account_id: int
    cmd: SendCommand


@dataclass(frozen=True, slots=True)
class _Sends:
    account_id: int
    cmds: tuple[SendCommand, ...]


@dataclass(frozen=True, slots=True)
class _Submission:
    prepared: tuple[Prepared, ...]


@dataclass(frozen=True, slots=True)
class Facts:
    emails: dict[tuple[int, int], EmailFacts]
    recipients: dict[tuple[int, str], rules.RecipientFacts]
    domains: dict[int, frozenset[str]]


def _rules_view(email: EmailFacts | None, whole: bool) -> rules.EmailFacts | None:
    """What the rules judge: the email's facts, a whole message's, or None (no such email)."""
    if email is not None:
        return rules.EmailFacts(email.state, email.single_send_api, email.subscription_type, email.automation)
    return WHOLE_MESSAGE if whole else None


def decide(account_id: int, cmd: SendCommand, facts: Facts, now: datetime) -> Prepared:
    """The send's row and record, from its facts. Problems with the email or the recipient end the
    send at once (a row with its sendResult, nothing published), as HubSpot's contract says."""
    status_id, message_id = send_ids(account_id, cmd.send_id)
    whole = cmd.raw_message is not None and cmd.email_id is None
    email = None if whole else facts.emails.get((account_id, cmd.email_id))
    domain = rules.from_domain(cmd.from_) or (email.from_email.rpartition("@")[2].lower() if email else None)
    refusal = rules.refusal(
        email=_rules_view(email, whole),
        require_single_send_api=cmd.require_single_send_api,
        require_automation=cmd.trigger_id is not None,
        to=cmd.to,
        from_=cmd.from_,
        recipient=facts.recipients.get((account_id, cmd.to.lower()), rules.RecipientFacts()),
        sending_domain_ok=(domain in facts.domains.get(account_id, ())) if cmd.require_sending_domain else None,
    )
    scheduled = cmd.send_at is not None and cmd.send_at > now and refusal is None
    row = RequestRow(
        status_id=status_id,
        message_id=message_id,
        account_id=account_id,
        send_id=cmd.send_id,
        email_id=cmd.email_id,
        recipient=cmd.to,
        requested_at=now,
        send_result=refusal.value if refusal else None,
        send_at=cmd.send_at if scheduled else None,
        trigger_id=cmd.trigger_id,
    )
    contact = dict(cmd.contact_properties) if cmd.contact_properties and rules.valid_address(cmd.to) else None
    event = None
    if refusal is None:
        assert email is not None or whole
        event = SendRequested(
            message_id=message_id,
            status_id=status_id,
            account_id=account_id,
            to=cmd.to,
            requested_at=now,
            email_id=email.id if email else None,
            email_version=email.current_version if email else None,
            cc=cmd.cc,
            bcc=cmd.bcc,
            reply_to=cmd.reply_to,
            from_override=cmd.from_,
            send_id=cmd.send_id,
            contact_properties=dict(cmd.contact_properties),
            custom_properties_json=json.dumps(cmd.custom_properties),
            trigger_id=cmd.trigger_id,
            raw_message=cmd.raw_message,
            custom_args=cmd.custom_args,
            categories=cmd.categories,
        )
    batch_id = cmd.batch_id if scheduled else None
    return Prepared(row=row, contact=contact, event=event, scheduled=scheduled, batch_id=batch_id)


def accepted_view(row: RequestRow) -> dict[str, Any]:
    return status_view(
        {
            "status_id": row.status_id,
            "requested_at": row.requested_at,
            "gateway_result": row.send_result,
            "gateway_completed_at": row.requested_at,
        }
    )


class AcceptWrite(Protocol):
    """The writes of one batch, all or none (adapters/accepting.PgAcceptWrite)."""

    async def insert_requests(self, rows: Sequence[RequestRow]) -> set[uuid.UUID]: ...
    async def merge_contacts(self, contacts: dict[tuple[int, str], dict[str, str]]) -> None: ...
    async def insert_scheduled(self, rows: Sequence[ScheduledRow]) -> None: ...


class AcceptStore(Protocol):
    """What accepting reads, a batch at a time, and its transaction (adapters/accepting.PgAcceptStore)."""

    async def email_facts(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], EmailFacts]: ...
    async def recipient_facts(self, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], rules.RecipientFacts]: ...
    async def verified_domains(self, account_ids: Sequence[int]) -> dict[int, frozenset[str]]: ...
    async def first_send_status(self, account_id: int, send_id: str) -> dict[str, Any] | None: ...
    def transaction(self) -> AbstractAsyncContextManager[AcceptWrite]: ...


class Acceptor:
    def __init__(
        self,
        store: AcceptStore,
        publish_all: PublishAll,
        caches: Caches,
        *,
        max_batch: int = 256,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.publish_all, self.caches, self.clock = store, publish_all, caches, clock
        self._batcher: Batcher[_Send | _Sends | _Submission, Any] = Batcher(self._flush, max_size=max_batch)

    async def send(self, account_id: int, cmd: SendCommand) -> dict[str, Any]:
        """The EmailSendStatusView of the send (or of the first send with the same sendId)."""
        return await self._batcher.submit(_Send(account_id, cmd))

    async def send_many(self, account_id: int, cmds: Sequence[SendCommand]) -> list[Prepared]:
        """Sends to many recipients, all or none, in one item of a batch; returns their decided
        sends once Kafka has the records (a repeated sendId's send is not sent again)."""
        return await self._batcher.submit(_Sends(account_id, tuple(cmds)))

    async def submit(self, prepared: Sequence[Prepared]) -> None:
        """Writes decided sends (an SMTP message's recipients) all or none; returns once Kafka has them."""
        await self._batcher.submit(_Submission(tuple(prepared)))

    async def drain(self) -> None:
        await self._batcher.drain()

    # ---- one batch ---------------------------------------------------------------------------

    async def _flush(self, items: list[_Send | _Sends | _Submission]) -> list[Any]:
        now = self.clock()
        sends_ = [i for i in items if isinstance(i, _Send)]
        sends_ += [_Send(i.account_id, c) for i in items if isinstance(i, _Sends) for c in i.cmds]
        facts = await self._facts(sends_)
        decided = [
            [decide(i.account_id, i.cmd, facts, now)]
            if isinstance(i, _Send)
            else [decide(i.account_id, c, facts, now) for c in i.cmds]
            if isinstance(i, _Sends)
            else list(i.prepared)
            for i in items
        ]
        try:
            inserted = await self._write([p for group in decided for p in group])
        except BAD_INPUT:
            if len(items) == 1:
                raise
            return [await self._alone(item) for item in items]  # find the send whose input is refused
        return [await self._answer(item, group, inserted) for item, group in zip(items, decided, strict=True)]

    async def _alone(self, item: _Send | _Sends | _Submission) -> Any | BaseException:
        try:
            return (await self._flush([item]))[0]
        except BAD_INPUT as exc:
            return exc

    async def _facts(self, sends_: list[_Send]) -> Facts:
        emails: dict[tuple[int, int], EmailFacts] = {}
        missing = set()
        for s in sends_:
            if s.cmd.raw_message is not None and s.cmd.email_id is None:
                continue
            key = (s.account_id, s.cmd.email_id)
            if (hit := self.caches.emails.get(key)) is not None:
                emails[key] = hit
            else:
                missing.add(key)
        if missing:
            for key, found in (await self.store.email_facts(sorted(missing))).items():
                emails[key] = found
                self.caches.remember_email(found)
        recipients = await self.store.recipient_facts(sorted({(s.account_id, s.cmd.to.lower()) for s in sends_}))
        domains = await self._domains({s.account_id for s in sends_ if s.cmd.require_sending_domain})
        return Facts(emails, recipients, domains)

    async def _domains(self, accounts: set[int]) -> dict[int, frozenset[str]]:
        found = {a: self.caches.domains[a] for a in accounts if a in self.caches.domains}
        if missing := sorted(accounts - found.keys()):
            for account, domains in (await self.store.verified_domains(missing)).items():
                found[account] = domains
                self.caches.remember_domains(account, domains)
        return found

    async def _write(self, prepared: list[Prepared]) -> set[uuid.UUID]:
        """One transaction: the rows, then the contacts, schedules and records of the rows inserted
        (a repeated sendId's is not); committed only once Kafka acknowledged every record."""
        async with self.store.transaction() as tx:
            inserted = await tx.insert_requests([p.row for p in prepared])
            # The rows inserted; a sendId repeated within the batch is inserted once: its first send.
            new = list(
                {p.row.status_id: p for p in reversed(prepared) if uuid.UUID(p.row.status_id) in inserted}.values()
            )
            contacts: dict[tuple[int, str], dict[str, str]] = {}
            for p in new:
                if p.contact is not None:
                    key = (p.row.account_id, p.row.recipient.lower())
                    contacts[key] = {**contacts.get(key, {}), **p.contact}
            await tx.merge_contacts(contacts)
            await tx.insert_scheduled(
                [
                    (p.row.status_id, p.row.account_id, p.row.send_at, encode(p.event), p.batch_id)
                    for p in new
                    if p.scheduled
                ],
            )
            records = [
                (SEND_REQUESTED.name, p.event.to.lower().encode(), encode(p.event))
                for p in new
                if p.event is not None and not p.scheduled
            ]
            if records:
                # Inside the transaction: if Kafka does not acknowledge, the rows are rolled back.
                await self.publish_all(records)
        for p in new:  # committed
            step = "scheduled" if p.scheduled else "accepted" if p.event is not None else "dropped"
            log_send(step, status_id=p.row.status_id, message_id=p.row.message_id, send_result=p.row.send_result)
        return inserted

    async def _answer(self, item: _Send | _Sends | _Submission, group: list[Prepared], inserted: set[uuid.UUID]) -> Any:
        if isinstance(item, _Submission):
            return None
        if isinstance(item, _Sends):
            return group
        (prepared,) = group
        if uuid.UUID(prepared.row.status_id) in inserted:
            return accepted_view(prepared.row)
        # A repeated sendId: the first send's status, nothing sent again.
        assert item.cmd.send_id is not None
        row = await self.store.first_send_status(item.account_id, item.cmd.send_id)
        return status_view(row) if row else accepted_view(prepared.row)
