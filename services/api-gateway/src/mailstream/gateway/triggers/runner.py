"""The trigger process's rules, one consumer group each: `mailstream-trigger-<rule id>`.

Every `trigger_refresh_s` the runner reads the enabled rules and reconciles: a new rule gets its
consumer (a new group reads its topic from the beginning), a changed rule's consumer is restarted
(same group: it reads on from its committed offsets), a paused or deleted rule's consumer stops
after finishing and committing the batch in hand. Its group's committed offsets stay in Kafka,
so a resumed rule reads on from where it stopped.

Before that, every rule is checked against the operator's restrictions again (allowed.py): the
operator may have narrowed the account's topic prefixes (or the registry list, at a restart) after
the rule was made. Such a rule is not run (a running one is stopped) and says so: one WARNING line
when it is refused, and the gauge mailstream_trigger_rules_not_run{trigger, field} while it is.

One group per rule, not one for the process: each rule has its own position on its topic (two
rules on one topic both see every record; pausing one does not hold the other), and replicas of
this process share each rule's partitions as the group's members.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from prometheus_client import Gauge

from mailstream.core.consumer import BatchLoop, batch_consumer
from mailstream.core.db import DATABASE_DOWN
from mailstream.gateway.adapters import triggers_store
from mailstream.gateway.trigger_models import consumer_group
from mailstream.gateway.triggers.allowed import Allowed
from mailstream.gateway.triggers.decoding import SchemaLookup
from mailstream.gateway.triggers.intake import PublishDeadLetters, Send, handle_batch
from mailstream.gateway.triggers.rule import RuleError, TriggerRule
from mailstream.gateway.triggers.settings import TriggerSettings

log = logging.getLogger("mailstream.gateway.triggers")
STOP_WAIT_S = 30.0
NOT_RUN = Gauge(
    "mailstream_trigger_rules_not_run",
    "Enabled trigger rules not run: their topic or schema registry is no longer allowed (1 per rule)",
    ["trigger", "field"],
)


@dataclass
class Running:
    rule: TriggerRule
    stop: asyncio.Event
    task: asyncio.Task | None = None
    loop: BatchLoop | None = None


class Runner:
    def __init__(
        self,
        settings: TriggerSettings,
        pool: asyncpg.Pool,
        *,
        send: Send,
        publish_dead: PublishDeadLetters,
        schemas: SchemaLookup,
        allowed: Allowed,
        rules: Callable[[asyncpg.Pool], Awaitable[list[TriggerRule]]] = triggers_store.enabled_rules,
        overrides: Callable[[asyncpg.Pool], Awaitable[dict[int, tuple[str, ...]]]] = (
            triggers_store.topic_prefix_overrides
        ),
    ) -> None:
        self.settings, self.pool = settings, pool
        self.send, self.publish_dead, self.schemas, self.rules = send, publish_dead, schemas, rules
        self.allowed, self.overrides = allowed, overrides
        self.running: dict[str, Running] = {}
        self.refused: dict[str, RuleError] = {}  # rule id -> why it is not run

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                rules, overrides = await self.rules(self.pool), await self.overrides(self.pool)
                await self.reconcile(self.admitted(rules, overrides))
            except DATABASE_DOWN as exc:
                log.warning("cannot read the trigger rules: %r", exc)
            except asyncpg.UndefinedTableError:
                log.info("waiting for the gateway's migrations")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.trigger_refresh_s)
        await asyncio.gather(*(self._stop(i) for i in list(self.running)))

    def admitted(self, rules: list[TriggerRule], overrides: dict[int, tuple[str, ...]]) -> dict[str, TriggerRule]:
        """The rules the operator's restrictions still allow, by id; the others are noted as refused."""
        admitted, refused = {}, {}
        for rule in rules:
            try:
                self.allowed.check(
                    rule, self.allowed.topic_prefixes_for(rule.account_id, overrides.get(rule.account_id))
                )
            except RuleError as exc:
                refused[rule.id] = exc
                continue
            admitted[rule.id] = rule
        for rule_id, exc in refused.items():
            if str(self.refused.get(rule_id)) != str(exc):
                log.warning(
                    "trigger not run: no longer allowed",
                    extra={"fields": {"trigger": rule_id, "field": exc.field, "reason": exc.message}},
                )
                if rule_id in self.refused:
                    NOT_RUN.remove(rule_id, self.refused[rule_id].field)
                NOT_RUN.labels(rule_id, exc.field).set(1)
        for rule_id in self.refused.keys() - refused.keys():
            NOT_RUN.remove(rule_id, self.refused[rule_id].field)
        self.refused = refused
        return admitted

    async def reconcile(self, wanted: dict[str, TriggerRule]) -> None:
        gone = [i for i, r in self.running.items() if wanted.get(i) != r.rule or (r.task and r.task.done())]
        await asyncio.gather(*(self._stop(i) for i in gone))
        for rule_id, rule in wanted.items():
            if rule_id not in self.running:
                self._start(rule)

    def _start(self, rule: TriggerRule) -> None:
        running = Running(rule, asyncio.Event())
        running.task = asyncio.create_task(self._consume(running), name=f"trigger-{rule.id}")
        self.running[rule.id] = running
        log.info("trigger started", extra={"fields": {"trigger": rule.id, "topic": rule.source_topic}})

    async def _stop(self, rule_id: str) -> None:
        running = self.running.pop(rule_id)
        running.stop.set()
        assert running.task is not None
        try:
            await asyncio.wait_for(asyncio.shield(running.task), STOP_WAIT_S)
        except TimeoutError:  # a batch retrying forever (a registry or the database down): let it go
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running.task
        except Exception:
            pass  # logged by _consume
        log.info("trigger stopped", extra={"fields": {"trigger": rule_id}})

    async def _consume(self, running: Running) -> None:
        rule, s = running.rule, self.settings
        consumer = batch_consumer(
            s.kafka_bootstrap,
            group_id=consumer_group(rule.id),
            client_id=f"mailstream-trigger-{rule.id[:8]}",
            fetch_min_bytes=s.trigger_fetch_min_bytes,
            fetch_max_wait_ms=s.trigger_fetch_max_wait_ms,
        )
        handle = functools.partial(
            handle_batch,
            rule=rule,
            send=self.send,
            publish_dead=self.publish_dead,
            schemas=self.schemas,
            require_sending_domain=s.require_sending_domain,
            clock=time.time,
        )
        loop = BatchLoop(consumer, handle=handle, name=f"trigger-{rule.id}", max_records=s.trigger_max_records)
        running.loop = loop
        consumer.subscribe([rule.source_topic], listener=loop)
        try:
            await consumer.start()
            await loop.run(running.stop)
        except Exception:
            log.exception("trigger %s: its consumer failed; it starts again at the next refresh", rule.id)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
