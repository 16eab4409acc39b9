"""The Faust app: wires Kafka topics to the pure processor and every registered subsystem.

Built by :func:`create_app` (no import-time singleton) so tests and several workers each build
their own. The agent reads raw bytes and decodes them itself: a message that cannot be decoded
or validated goes to ``ioc.dlq.v1`` with its bytes, position and reason, and the agent goes on.

Offsets: the agent runs with manual acknowledgement. An event is acknowledged only once every
window it contributed to has closed and its KPI records were flushed to Kafka, so a worker killed
at any moment resumes from the oldest event still needed and rebuilds its windows exactly. Faust
runs at-least-once (never ``exactly_once``, see STYLE.md) with agent concurrency 1.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from faust.sensors.monitor import Monitor
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP as FaustTP
from faust.types import EventT

from ioc.connectors.privacy import lazy_key, redact_dead_letter
from ioc.connectors.producer import producer_config
from ioc.infra.metrics import Metrics
from ioc.infra.reference import ReferenceData
from ioc.infra.settings import Settings
from ioc.schemas.serde import DecodeError, Serde
from ioc.streams import checkpoints
from ioc.streams import cursor as cursor_mod
from ioc.streams.cursor import ReadCursor, Verdict
from ioc.streams.engine import TP, Position, ReplayGuard
from ioc.streams.processor import Processor, Step
from ioc.streams.registry import build_domains

log = logging.getLogger(__name__)


def _new_offset_within_limit(self: Any, tp: Any) -> int | None:
    """Faust's ``Consumer._new_offset``, replaced by the app's own commit limit.

    Faust derives the offset to commit from the offsets acknowledged and the ones it skipped
    ("gaps"). Both go wrong for this worker: faust-streaming 0.15 commits past a single
    unacknowledged message at the committed offset (issue #606, fix proposed in PR #707) — a
    rule holding one open citizen report there lost it on restart — and after a rebalance the
    offsets Faust skipped can be messages it never delivered (see :mod:`ioc.streams.cursor`).
    The app knows exactly how far it may commit (``ioc_commit_limit``: its read cursor or the
    oldest position it still holds); Faust's own computation still runs to keep its
    bookkeeping trimmed. Apps without the hook get Faust's answer.
    """
    proposed = _faust_new_offset(self, tp)
    limit_of = getattr(self.app, "ioc_commit_limit", None)
    if limit_of is None:
        return proposed  # type: ignore[no-any-return]
    limit: int | None = limit_of(tp)
    committed = self._committed_offset[tp]
    if limit is None or (committed is not None and limit <= committed):
        return None
    return limit


_faust_new_offset = FaustConsumer._new_offset
FaustConsumer._new_offset = _new_offset_within_limit  # type: ignore[method-assign]


class QuietMonitor(Monitor):
    """Faust's built-in monitor does bookkeeping for every message and stream event; the
    platform's Prometheus metrics cover what operators need, so the per-message hooks are
    no-ops here."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

KPI_TOPIC = "ioc.kpi.v1"
STUCK_AFTER_S = 15.0  # see create_app's unstick()
ALERT_TOPIC = "ioc.alert.v1"
DLQ_TOPIC = "ioc.dlq.v1"


@dataclass
class WorkerState:
    """What idle detection and the lag metric read."""

    last_event_monotonic: float = field(default_factory=time.monotonic)
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    heartbeat: float = field(default_factory=time.monotonic)  # stamped by the tick timer
    lag_total: int | None = None  # unread messages at the last lag reading


def _log_output_error(err: KafkaError) -> None:
    """librdkafka's client-level errors of the output producer (brokers down, fatal
    idempotence errors): retried by the client, but worth a line in the log."""
    log.warning("output producer: %s", err)


OUTPUT_PRODUCER: dict[str, Any] = {"linger.ms": 50, "message.timeout.ms": 0,
                                   "error_cb": _log_output_error}
"""Producer settings of the worker's outputs: batch for 50 ms, and never give up on a message
(0 = no timeout) — a broker restart delays outputs instead of failing them; only permanent
errors (authorisation, a deleted topic) fail, and then the worker stops without acknowledging."""


def faust_broker(settings: Settings) -> str:
    """Faust's broker URL list (``kafka://h1:9092;kafka://h2:9092``) for the bootstrap servers."""
    return ";".join(f"kafka://{host.strip()}" for host in settings.bootstrap.split(",")
                    if host.strip())


def broker_credentials(settings: Settings) -> Any:
    """Faust (aiokafka) credentials for the configured Kafka security protocol, or None for
    PLAINTEXT. Same user, password and CA as the confluent-kafka clients
    (:attr:`Settings.kafka_security`)."""
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL_"):
        assert settings.kafka_password is not None
        return faust.SASLCredentials(username=settings.kafka_username,
                                     password=settings.kafka_password.get(),
                                     ssl_context=settings.kafka_ssl_context(),
                                     mechanism=settings.kafka_sasl_mechanism)
    if protocol == "SSL":
        return faust.SSLCredentials(settings.kafka_ssl_context())
    return None


FAULT_UNDELIVERED_ENV = "IOC_FAULT_UNDELIVERED"


def fault_undelivered() -> set[Position]:
    """Testing only: ``IOC_FAULT_UNDELIVERED=<topic>:<partition>:<first offset>:<count>`` makes
    the agent ignore those messages the first time they come, as Faust's consumer does with
    messages it drops after a rebalance (see :mod:`ioc.streams.cursor`)."""
    spec = os.environ.get(FAULT_UNDELIVERED_ENV)
    if not spec:
        return set()
    topic, partition, first, count = spec.rsplit(":", 3)
    log.warning("fault injection: %s[%s] offsets %s+%s will not be delivered once", topic,
                partition, first, count)
    return {((topic, int(partition)), int(first) + i) for i in range(int(count))}


def create_app(settings: Settings, *, reference: ReferenceData, metrics: Metrics,
               serde: Serde | None = None,
               restored_alerts: list[Mapping[str, Any]] | None = None,
               producer: Producer | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC),
               tick_interval: float = 1.0, flush_interval: float = 2.0,
               checkpoint_interval: float = 5.0,
               ) -> tuple[faust.App, WorkerState]:
    serde = serde or Serde()
    app = faust.App(
        f"{settings.topic_prefix}ioc-streams",
        broker=faust_broker(settings),
        broker_credentials=broker_credentials(settings),
        value_serializer="raw",
        key_serializer="raw",
        processing_guarantee="at_least_once",
        store="memory://",
        datadir=str(settings.data_dir / "faust"),  # not the working directory
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor or 1,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        producer_acks=-1,
        stream_wait_empty=False,
        monitor=QuietMonitor(),
        # A worker killed without leaving the group is noticed after this long; keep restarts
        # quick.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
    )
    processor = Processor(build_domains(reference),
                          timedelta(seconds=settings.allowed_lateness_s), clock)
    processor.restore_alerts(list(restored_alerts or []))
    state = WorkerState()
    logical = {settings.topic(t): t for t in processor.topics}
    source = app.topic(*logical.keys(), value_serializer="raw", key_serializer="raw")
    held: dict[Position, EventT] = {}
    held_offsets: dict[TP, list[int]] = {}  # per partition a heap of held offsets (lazy deletes)
    cursor = ReadCursor()  # the next offset to take per partition (see ioc.streams.cursor)

    def hold(pos: Position, event: EventT) -> None:
        held[pos] = event
        heapq.heappush(held_offsets.setdefault(pos[0], []), pos[1])

    def commit_limit(faust_tp: Any) -> int | None:
        """How far Faust may commit ``faust_tp``: to the read cursor, or to the oldest position
        still held (its outputs unconfirmed, or a window or rule still needs it)."""
        tp = (logical.get(faust_tp.topic, faust_tp.topic), faust_tp.partition)
        limit = cursor.next(tp)
        if limit is None:
            return None  # nothing taken since the assignment
        heap = held_offsets.get(tp)
        while heap and (tp, heap[0]) not in held:
            heapq.heappop(heap)
        return min(limit, heap[0]) if heap else limit

    app.ioc_commit_limit = commit_limit  # type: ignore[attr-defined]
    probed: dict[TP, int] = {}  # per partition, the cursor Kafka confirmed holds a message
    undelivered = fault_undelivered()
    last_seek: dict[TP, tuple[int, float]] = {}
    owned: set[Any] = set()  # Faust TPs assigned to this worker now (see on_assigned)
    guarded: set[TP] = set()  # partitions whose replay guard was looked up since assignment
    streams: list[Any] = []
    last_flush = [time.monotonic()]
    # Outputs (KPIs, alerts, dead letters) go through one batching confluent-kafka producer:
    # far cheaper per record than Faust's producer, and flushed before any offset moves on.
    out = producer or Producer(producer_config(settings.bootstrap, **settings.kafka_security,
                                                **OUTPUT_PRODUCER))
    unflushed = [False]  # something was produced since the last flush
    pending_ack: list[Position] = []
    failures: list[str] = []
    out_names = {t: settings.topic(t) for t in (KPI_TOPIC, ALERT_TOPIC, DLQ_TOPIC)}
    out_names[checkpoints.TOPIC_SUFFIX] = checkpoints.checkpoint_topic(settings)
    written: dict[TP, ReplayGuard] = {}  # the last checkpoint written per partition
    last_checkpoint = [time.monotonic()]
    loop_executor = None  # default executor: flush blocks a thread, not the event loop
    pseudonym_secret = lazy_key(settings)  # loaded only if a report is dead-lettered

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}: {err.str()}")

    def produce(topic: str, key: bytes, value: bytes) -> None:
        unflushed[0] = True
        while True:
            try:
                out.produce(out_names[topic], key=key, value=value, on_delivery=on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain first
                out.poll(0.05)

    async def publish(step: Step) -> None:
        for rec in step.kpis:
            produce(KPI_TOPIC, rec["kpi"].encode(), serde.encode(KPI_TOPIC, rec))
        for rec in step.alerts:
            produce(ALERT_TOPIC, rec["alert_id"].encode(), serde.encode(ALERT_TOPIC, rec))
            metrics.alerts_emitted.labels(rec["rule"], rec["status"]).inc()
        if step.kpis:
            kpis_out.inc(len(step.kpis))
        if step.alerts:
            alerts_out.inc(len(step.alerts))
        out.poll(0)

    ack_lock = asyncio.Lock()

    async def acknowledge(positions: list[Position]) -> None:
        """Acknowledge released positions once everything produced before is on the broker.

        The agent and the timer both call this; the lock makes a caller that arrives during
        another's flush wait for it and then flush again if it produced meanwhile, so no
        position is acknowledged ahead of its outputs.
        """
        pending_ack.extend(positions)
        if not pending_ack:
            return
        async with ack_lock:
            batch = pending_ack[:]
            pending_ack.clear()
            if not batch:
                return
            if unflushed[0]:
                unflushed[0] = False
                loop = asyncio.get_running_loop()
                waited = 0.0
                while True:
                    # The output producer never times a message out (OUTPUT_PRODUCER): while
                    # the broker is away (a restart) the worker waits here, acknowledging
                    # nothing, and carries on when it is back.
                    remaining = await loop.run_in_executor(loop_executor, out.flush, 5.0)
                    if not remaining or failures:
                        break
                    waited += 5.0
                    if waited % 30 == 0:
                        log.warning("waiting %.0f s for Kafka to confirm %d outputs", waited,
                                    remaining)
                if remaining or failures:
                    # Do not acknowledge: crash, and let the restarted worker replay from the
                    # last committed offsets (at-least-once; outputs are idempotent).
                    raise RuntimeError(f"outputs not confirmed by Kafka ({remaining} pending): "
                                       + "; ".join(failures[:3]))
            stream = streams[0]
            for pos in batch:
                event = held.pop(pos, None)
                if event is not None:
                    await stream.ack(event)

    async def write_checkpoints(only: set[TP] | None = None, confirm: bool = False) -> None:
        """Checkpoint the partitions whose replay guard moved (see :mod:`.checkpoints`). The
        snapshot is taken first, then everything produced so far is confirmed, then the
        checkpoints are produced — confirmed by the next flush, or now with ``confirm``
        (before partitions are handed over or the worker exits)."""
        snapshot = {tp: g for tp, g in processor.engine.checkpoint().items()
                    if written.get(tp) != g and (only is None or tp in only)}
        if not snapshot:
            return
        loop = asyncio.get_running_loop()
        remaining = await loop.run_in_executor(loop_executor, out.flush, 5.0)
        if remaining or failures:
            return  # Kafka is away: keep the older checkpoints, try again next time
        for (topic, partition), guard in snapshot.items():
            if (topic, partition) not in processor.engine.watermarks:
                continue  # the partition was revoked meanwhile
            key, value = checkpoints.encode(settings.topic(topic), partition, guard)
            produce(checkpoints.TOPIC_SUFFIX, key, value)
            written[(topic, partition)] = guard
        if confirm:
            await loop.run_in_executor(loop_executor, out.flush, 5.0)

    async def dead_letter(event: EventT, topic: str, err: DecodeError) -> None:
        msg = event.message
        # Reports may carry personal data that no producer of ours protected (bytes written
        # straight to Kafka): the dead letter keeps a redacted copy (ioc.connectors.privacy).
        key, payload, reason = redact_dead_letter(
            topic, msg.key if isinstance(msg.key, bytes) else None,
            msg.value if isinstance(msg.value, bytes) else b"", err.reason, serde,
            pseudonym_secret)
        rec = {"topic": topic, "partition": msg.partition, "offset": msg.offset,
               "key": key, "payload": payload,
               "error_type": err.error_type, "reason": reason,
               "stage": "streams", "failed_at": clock()}
        produce(DLQ_TOPIC, f"{topic}:{msg.partition}:{msg.offset}".encode(),
                serde.encode(DLQ_TOPIC, rec))
        metrics.dead_letters.labels("streams", topic, err.error_type).inc()
        log.warning("dead-lettered %s[%d]@%d: %s: %s", topic, msg.partition, msg.offset,
                    err.error_type, reason)

    kpis_out = metrics.events_out.labels("streams", KPI_TOPIC)
    alerts_out = metrics.events_out.labels("streams", ALERT_TOPIC)
    children: dict[tuple[str, ...], Any] = {}

    def in_counter(topic: str) -> Any:
        key = ("in", topic)
        if key not in children:
            children[key] = metrics.events_in.labels("streams", topic)
        return children[key]

    def outcome_counter(topic: str, outcome: str) -> Any:
        key = ("outcome", topic, outcome)
        if key not in children:
            children[key] = metrics.event_outcomes.labels(topic, outcome)
        return children[key]

    @app.agent(source, concurrency=1)
    async def events(stream: Any) -> None:
        manual = stream.noack()
        streams.append(manual)
        async for event in manual.events():
            msg = event.message
            topic = logical.get(msg.topic, msg.topic)
            tp = (topic, msg.partition)
            if msg.tp not in owned:
                if msg.tp not in app.consumer.assignment():
                    # Read before a rebalance took the partition away (the agent may still
                    # hold a few such messages after on_revoked dropped the partition's
                    # state): its new owner replays it; counting it here would rebuild a
                    # partial window and publish it over the right one.
                    continue
                owned.add(msg.tp)  # assigned, and the signal has not reached us yet
            if tp not in guarded:
                await install_guards({tp})
                if msg.tp not in owned and msg.tp not in app.consumer.assignment():
                    continue  # revoked meanwhile
            if (tp, msg.offset) in undelivered:
                undelivered.discard((tp, msg.offset))  # fault injection: as if never delivered
                continue
            verdict = cursor.check(tp, msg.offset)
            if verdict is Verdict.AGAIN:
                continue
            if verdict is Verdict.GAP and not await take_after_gap(msg, tp):
                continue
            state.last_event_monotonic = time.monotonic()
            state.positions[(msg.topic, msg.partition)] = msg.offset
            in_counter(topic).inc()
            try:
                record = serde.decode(topic, msg.value)
            except DecodeError as err:
                await dead_letter(event, topic, err)
                hold((tp, msg.offset), event)
                cursor.take(tp, msg.offset)
                await acknowledge([(tp, msg.offset)])
                continue
            step = processor.handle(topic, record, tp, msg.offset)
            assert step.outcome is not None
            outcome_counter(topic, step.outcome.value).inc()
            hold((tp, msg.offset), event)
            cursor.take(tp, msg.offset)
            if step.alerts or step.kpis:
                await publish(step)
            await acknowledge(step.released)

    async def take_after_gap(msg: Any, tp: TP) -> bool:
        """A message past the read cursor: take it if the log holds nothing between, else seek
        back to the cursor (see :mod:`ioc.streams.cursor`) and skip it for now."""
        expected = cursor.next(tp)
        assert expected is not None
        target = expected
        if probed.get(tp) != expected:  # else known to be in the log: the consumer skipped it
            first = await asyncio.get_running_loop().run_in_executor(
                loop_executor, cursor_mod.first_offset_at, settings, msg.topic, msg.partition,
                expected)
            if cursor.next(tp) != expected or msg.tp not in app.consumer.assignment():
                return False  # a rebalance or a seek ran meanwhile: the message comes again
            resolved = cursor.resolve_gap(tp, msg.offset, first)
            if resolved is None:
                log.warning("%s[%d]: offsets %d-%d are not in the log (transaction markers or "
                            "deleted by retention); going on at %d", tp[0], msg.partition,
                            expected, msg.offset - 1, msg.offset)
                return True
            target = resolved
            if first == target:
                probed[tp] = target
        now = time.monotonic()
        previous = last_seek.get(tp)
        if previous is None or previous[0] != target or now - previous[1] > 1.0:
            # Messages fetched before the seek may still come for a while (skipped here, and
            # the seek repeated each second until the consumer delivers the cursor's message).
            if previous is None or previous[0] != target:
                log.warning("%s[%d]: the consumer skipped offsets %d-%d; reading them again",
                            tp[0], msg.partition, target, msg.offset - 1)
            last_seek[tp] = (target, now)
            metrics.stream_rereads.labels(tp[0]).inc()
            seek_soon(msg.tp, target)
        return False

    @app.timer(interval=tick_interval)
    async def advance() -> None:
        state.heartbeat = time.monotonic()
        if not streams:
            return
        lags = partition_lags(app, state)  # one reading per tick serves the rules and the metric
        tell_progress(lags)
        step = processor.tick()
        now = time.monotonic()
        if now - last_flush[0] >= flush_interval:
            step.kpis.extend(processor.flush())
            last_flush[0] = now
        await publish(step)
        await acknowledge(step.released)
        if now - last_checkpoint[0] >= checkpoint_interval:
            last_checkpoint[0] = now
            await write_checkpoints()
        metrics.open_windows.set(processor.engine.open_windows)
        metrics.held_events.set(processor.engine.held_events)
        update_lag(lags)
        seek_again(now)
        unstick(lags, now)

    def tell_progress(lags: Mapping[Any, int | None]) -> None:
        """Rules that close days or windows over several partitions wait for every assigned
        partition that still has unread messages (see :class:`ioc.streams.domain.Progress`)."""
        processor.set_unread({(logical.get(tp.topic, tp.topic), tp.partition): lag
                              for tp, lag in lags.items()})

    seeking: dict[Any, asyncio.Task[None]] = {}  # per Faust TP, the seek under way

    def seek_soon(ftp: Any, offset: int) -> None:
        """Seek ``ftp`` back to ``offset`` in the background, one seek per partition at a time:
        Faust's ``seek_wait`` runs in the consumer's own thread (a seek from this thread raced
        its fetcher and crashed the worker) and waits for the position, which takes as long as
        the broker takes — the agent and the tick timer must not wait for it."""
        if ftp in seeking:
            return

        async def run() -> None:
            try:
                await app.consumer.seek_wait({ftp: offset})
            except Exception as exc:  # broker away, partition moved: seek_again tries again
                log.warning("%s[%d]: seek to %d failed: %r", ftp.topic, ftp.partition, offset,
                            exc)
            finally:
                seeking.pop(ftp, None)

        seeking[ftp] = asyncio.ensure_future(run())

    def seek_again(now: float) -> None:
        """Repeat, each second, a seek back to the cursor until its message comes: messages
        the consumer fetched before a seek can move its read position past the re-read ones
        again (see take_after_gap)."""
        for tp, (target, at) in list(last_seek.items()):
            if cursor.next(tp) != target:
                del last_seek[tp]  # read again: done
                continue
            ftp = FaustTP(settings.topic(tp[0]), tp[1])
            if now - at >= 1.0 and ftp in app.consumer.assignment():
                last_seek[tp] = (target, now)
                metrics.stream_rereads.labels(tp[0]).inc()
                seek_soon(ftp, target)

    still: dict[Any, tuple[int | None, float]] = {}  # per partition: position, since when
    rescued: dict[Any, int] = {}  # per partition: the cursor unstick() last sought back to

    def unstick(lags: Mapping[Any, int | None], now: float) -> None:
        """A partition with messages to read whose position has not moved for
        ``STUCK_AFTER_S``: the consumer may have dropped what it re-read after a rebalance
        with nothing later to show the gap (see :mod:`ioc.streams.cursor`). Read again from
        the cursor (harmless if the worker was only slow: what it reads twice is skipped)."""
        for ftp, lag in lags.items():
            pos = state.positions.get((ftp.topic, ftp.partition))
            if not lag or lag <= 0:
                still.pop(ftp, None)
                continue
            seen = still.get(ftp)
            if seen is None or seen[0] != pos:
                still[ftp] = (pos, now)
                continue
            if now - seen[1] < STUCK_AFTER_S:
                continue
            tp = (logical.get(ftp.topic, ftp.topic), ftp.partition)
            target = cursor.next(tp)
            if target is None or ftp not in app.consumer.assignment():
                continue
            still[ftp] = (pos, now)
            if rescued.get(ftp) != target:  # once per position (a broker outage repeats this)
                rescued[ftp] = target
                log.warning("%s[%d]: %d messages unread and no progress for %.0f s; reading "
                            "again from %d", tp[0], ftp.partition, lag, now - seen[1], target)
            metrics.stream_rereads.labels(tp[0]).inc()
            seek_soon(ftp, target)

    def update_lag(lags: Mapping[Any, int | None]) -> None:
        known = [lag for lag in lags.values() if lag is not None]
        state.lag_total = sum(max(lag, 0) for lag in known) if known else None
        for tp, lag in lags.items():
            logical_topic = logical.get(tp.topic)
            if logical_topic is not None and lag is not None:
                metrics.consumer_lag.labels("streams", logical_topic, str(tp.partition)).set(
                    max(lag, 0))

    def forget(tps: set[TP]) -> None:
        processor.drop_partitions(tps)
        guarded.difference_update(tps)
        cursor.forget(tps)
        for tp in tps:
            state.positions.pop((settings.topic(tp[0]), tp[1]), None)
            still.pop(FaustTP(settings.topic(tp[0]), tp[1]), None)
            rescued.pop(FaustTP(settings.topic(tp[0]), tp[1]), None)
            written.pop(tp, None)
            held_offsets.pop(tp, None)
            probed.pop(tp, None)
            last_seek.pop(tp, None)
        for pos in [p for p in held if p[0] in tps]:
            del held[pos]

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode types want positional-only
    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", set())
        owned.difference_update(revoked)
        # Hand the partitions over with their latest checkpoints (their new owner replays).
        await write_checkpoints({(logical.get(tp.topic, tp.topic), tp.partition)
                                 for tp in revoked}, confirm=True)
        forget({(logical.get(tp.topic, tp.topic), tp.partition) for tp in revoked})

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs.get("assigned", set())
        owned.clear()
        owned.update(assigned)
        # Anything still known about a partition not assigned now is stale: drop it too.
        mine = {(logical.get(tp.topic, tp.topic), tp.partition) for tp in assigned}
        stale = ({tp for tp in processor.engine.watermarks if tp not in mine}
                 | {pos[0] for pos in held if pos[0] not in mine})
        if stale:
            forget(stale)
        await install_guards({(logical.get(tp.topic, tp.topic), tp.partition)
                              for tp in assigned})

    async def install_guards(tps: set[TP]) -> None:
        """Replay guards from the partitions' checkpoints, once per assignment and before any
        of their events is counted (the agent calls this too when a partition's first message
        comes before the assignment signal)."""
        tps = tps - guarded
        if not tps:
            return
        physical = {(settings.topic(t), p) for t, p in tps}
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(loop_executor, checkpoints.read, settings,
                                               physical)
        except KafkaException as exc:
            log.warning("cannot read replay checkpoints (%s): replaying without guards", exc)
            found = {}
        try:
            starts = await loop.run_in_executor(
                loop_executor, cursor_mod.start_offsets, settings, app.conf.id,
                {(t, p) for t, p in physical if t in logical})  # source topics only
        except KafkaException as exc:
            log.warning("cannot read the committed offsets (%s): taking the messages as they "
                        "come", exc)
            starts = {}
        assigned = {(logical.get(t.topic, t.topic), t.partition)
                    for t in app.consumer.assignment()}
        tps = (tps & assigned) - guarded  # a rebalance may have run meanwhile
        for (topic, partition), guard in found.items():
            tp = (logical.get(topic, topic), partition)
            if tp in tps:
                processor.engine.guards[tp] = guard
        for (topic, partition), offset in starts.items():
            tp = (logical.get(topic, topic), partition)
            if tp in tps:
                cursor.start(tp, offset)
                state.positions[(topic, partition)] = offset - 1  # read up to here
        guarded.update(tps)

    async def flush_all() -> None:
        """Publish every pending window's current value (used before an idle exit)."""
        tell_progress(partition_lags(app, state))
        step = processor.tick()
        step.kpis.extend(processor.flush())
        await publish(step)
        await acknowledge(step.released)
        await write_checkpoints()
        loop = asyncio.get_running_loop()
        waited = 0.0
        while not failures and (remaining := await loop.run_in_executor(
                loop_executor, out.flush, 5.0)):
            waited += 5.0
            log.warning("waiting %.0f s for Kafka to confirm %d outputs before exiting", waited,
                        remaining)
        if failures:  # the exit must not look clean: the next start recomputes them
            raise RuntimeError("outputs not confirmed by Kafka: " + "; ".join(failures[:3]))

    app.ioc_flush_all = flush_all  # type: ignore[attr-defined]
    return app, state


def partition_lags(app: faust.App, state: WorkerState,
                   ends: Mapping[tuple[str, int], int] | None = None) -> dict[Any, int | None]:
    """Messages not yet read on each assigned partition (None while its end is unknown).

    The partitions' ends are ``ends`` (asked of the broker) or else the highwaters of the last
    fetch responses (cheap, for the metrics; stale while the broker is away)."""
    consumer = app.consumer
    lags: dict[Any, int | None] = {}
    for tp in consumer.assignment():
        high: int | None
        if ends is not None:
            high = ends.get((tp.topic, tp.partition))
        else:
            try:
                high = consumer.highwater(tp)
            except Exception:  # not fetched yet
                high = None
        if high is None:
            lags[tp] = None
            continue
        pos = state.positions.get((tp.topic, tp.partition))
        if pos is None:
            # Nothing read since the assignment: the consumer resumes at the committed offset
            # (Faust keeps it as the read offset until a message comes), so a partition whose
            # every message is committed is caught up.
            resume = consumer._read_offset.get(tp)  # type: ignore[attr-defined]
            lags[tp] = high - (resume or 0)
            continue
        lags[tp] = high - pos - 1
    return lags


async def caught_up(app: faust.App, state: WorkerState, timeout: float = 10.0) -> bool:
    """True when the worker has read every message that is on its assigned partitions now.

    The ends are asked of the broker: the highwaters of the last fetch responses stop moving
    while the broker is away, and an idle exit judged on them stopped a worker during a broker
    restart with everything produced since unread. No answer (broker away) → False."""
    assignment = app.consumer.assignment()
    if not assignment:
        return False
    try:
        found = await asyncio.wait_for(app.consumer.highwaters(*assignment), timeout)
    except Exception:  # broker unreachable, request timed out, partitions moving
        return False
    ends = {(tp.topic, tp.partition): offset for tp, offset in found.items()}
    lags = partition_lags(app, state, ends)
    return bool(lags) and all(lag is not None and lag <= 0 for lag in lags.values())


async def sleep_until_idle(app: faust.App, state: WorkerState, idle_seconds: float) -> None:
    while True:
        await asyncio.sleep(0.5)
        quiet = time.monotonic() - state.last_event_monotonic
        if quiet >= idle_seconds and await caught_up(app, state):
            return
