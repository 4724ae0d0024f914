"""Background webhook sender: FACEIT envelopes, bounded concurrency, a retry policy, faults."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import aiohttp

from sandbox.faceit.model import Subscription
from sandbox.faceit.webhook_payloads import envelope

logger = logging.getLogger(__name__)

REORDER_MODES = ("none", "reverse", "shuffle")


@dataclass(frozen=True)
class WebhookOptions:
    """How deliveries behave; settable at start (CLI) and at runtime (control API).

    A failed attempt is retried `retries` times (0: never), the n-th retry after
    `backoff_s * 2**(n-1)`; up to `concurrency` deliveries per subscription are in flight at once.
    FACEIT documents neither its retry policy nor its concurrency.
    """

    duplicate: int = 1
    drop_rate: float = 0.0
    reorder: str = "none"
    seed: int = 0
    retries: int = 4
    backoff_s: float = 0.05
    timeout_s: float = 5.0
    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.duplicate < 1:
            raise ValueError("duplicate must be at least 1")
        if not 0.0 <= self.drop_rate <= 1.0:
            raise ValueError("drop_rate must be within 0..1")
        if self.reorder not in REORDER_MODES:
            raise ValueError(f"reorder must be one of {', '.join(REORDER_MODES)}")
        if self.retries < 0:
            raise ValueError("retries must be at least 0")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.backoff_s < 0 or self.timeout_s <= 0:
            raise ValueError("backoff_s must be >= 0 and timeout_s > 0")

    def with_changes(self, changes: Mapping[str, Any]) -> WebhookOptions:
        """A copy with some fields changed (unknown names are an error)."""
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise ValueError(f"unknown webhook options: {', '.join(sorted(unknown))}")
        return replace(self, **changes)


@dataclass
class Delivery:
    """One copy of one event on its way to one subscription."""

    subscription: Subscription
    event: str
    event_id: str
    transaction_id: str
    match_id: str
    payload: dict[str, Any]
    timestamp: float
    copy: int
    retry_count: int = 0
    delivery_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Attempt:
    """One HTTP POST to a receiver and what came back."""

    delivery_id: str
    subscription_id: str
    event: str
    event_id: str
    match_id: str
    copy: int
    retry_count: int
    status: int | None
    error: str | None
    at: float
    duration_ms: float


@dataclass
class _Outbox:
    """One subscription's queue and the sends in flight from it."""

    queue: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)
    sending: set[asyncio.Task[None]] = field(default_factory=set)
    slot_free: asyncio.Event = field(default_factory=asyncio.Event)
    dispatcher: asyncio.Task[None] | None = None


def _log_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("webhook task %s died", task.get_name(), exc_info=task.exception())


class WebhookDeliverer:
    """Queues deliveries per subscription and sends them in the background, queue order first.

    Each subscription has up to `concurrency` sends in flight, so deliveries may arrive
    in another order than they were queued in (with concurrency 1 they arrive in order).
    """

    def __init__(
        self,
        *,
        app_id: str,
        options: WebhookOptions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_id = app_id
        self._clock = clock
        self._options = options
        self._initial_options = options
        self._drop_rng = random.Random(options.seed)
        self._order_rng = random.Random(options.seed)
        self._session: aiohttp.ClientSession | None = None
        self._outboxes: dict[str, _Outbox] = {}
        self._held: dict[tuple[str, str], list[Delivery]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._attempts: list[Attempt] = []
        self._dropped: list[dict[str, Any]] = []
        self._pending = 0
        self._failed = 0

    @property
    def options(self) -> WebhookOptions:
        """The options in force."""
        return self._options

    def set_options(self, options: WebhookOptions) -> None:
        """Change options; a new seed restarts the random streams, `reorder=none` flushes."""
        if options.seed != self._options.seed:
            self._drop_rng = random.Random(options.seed)
            self._order_rng = random.Random(options.seed)
        self._options = options
        for outbox in self._outboxes.values():
            outbox.slot_free.set()  # a higher concurrency may let a dispatcher go on
        if options.reorder == "none":
            self.flush()

    def reset_options(self) -> None:
        """Go back to the options the deliverer was built with."""
        self.set_options(self._initial_options)

    async def start(self) -> None:
        """Open the HTTP session used for deliveries."""
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Stop sending: cancel dispatchers, sends and retry timers, close the session."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        tasks = [
            task
            for outbox in self._outboxes.values()
            for task in (outbox.dispatcher, *outbox.sending)
            if task is not None
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._outboxes.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def publish(
        self,
        *,
        event: str,
        match_id: str,
        payload: Mapping[str, Any],
        subscriptions: Iterable[Subscription],
        ends_lifecycle: bool,
    ) -> list[dict[str, Any]]:
        """Send `event` to every subscription in the background; say what happened to each."""
        timestamp = self._clock()
        outcome = []
        for subscription in subscriptions:
            event_id = str(uuid.uuid4())
            summary: dict[str, Any] = {
                "subscription_id": subscription.subscription_id,
                "event": event,
                "event_id": event_id,
                "copies": 0,
            }
            if self._drop_rng.random() < self._options.drop_rate:
                summary["state"] = "dropped"
                self._dropped.append({**summary, "match_id": match_id})
                logger.info("dropping %s %s for match %s", event, event_id, match_id)
                outcome.append(summary)
                continue
            copies = [
                Delivery(
                    subscription=subscription,
                    event=event,
                    event_id=event_id,
                    transaction_id=str(uuid.uuid4()),
                    match_id=match_id,
                    payload=dict(payload),
                    timestamp=timestamp,
                    copy=index,
                )
                for index in range(self._options.duplicate)
            ]
            summary["copies"] = len(copies)
            if self._options.reorder == "none":
                summary["state"] = "queued"
                for delivery in copies:
                    self._enqueue(delivery)
            else:
                summary["state"] = "held"
                key = (subscription.subscription_id, match_id)
                self._held.setdefault(key, []).extend(copies)
                if ends_lifecycle:
                    self._release(key)
                    summary["state"] = "queued"
            outcome.append(summary)
        return outcome

    def flush(self) -> int:
        """Release every held delivery now (in the reorder order); how many were released."""
        count = 0
        for key in list(self._held):
            count += self._release(key)
        return count

    def snapshot(self) -> dict[str, Any]:
        """Attempts so far, dropped events, and how many deliveries are pending, held or failed."""
        return {
            "pending": self._pending,
            "held": sum(len(group) for group in self._held.values()),
            "failed": self._failed,
            "attempts": [asdict(attempt) for attempt in self._attempts],
            "dropped": list(self._dropped),
        }

    def _release(self, key: tuple[str, str]) -> int:
        group = self._held.pop(key, [])
        if self._options.reorder == "shuffle":
            self._order_rng.shuffle(group)
        elif self._options.reorder == "reverse":
            group.reverse()
        for delivery in group:
            self._enqueue(delivery)
        return len(group)

    def _enqueue(self, delivery: Delivery) -> None:
        self._pending += 1
        self._outbox(delivery.subscription).queue.put_nowait(delivery)

    def _outbox(self, subscription: Subscription) -> _Outbox:
        outbox = self._outboxes.get(subscription.subscription_id)
        if outbox is None:
            outbox = _Outbox()
            outbox.dispatcher = asyncio.create_task(
                self._dispatch(outbox), name=f"faceit-webhooks-{subscription.subscription_id}"
            )
            outbox.dispatcher.add_done_callback(_log_death)
            self._outboxes[subscription.subscription_id] = outbox
        return outbox

    async def _dispatch(self, outbox: _Outbox) -> None:
        """Start a send for each queued delivery, at most `concurrency` at a time."""
        while True:
            delivery = await outbox.queue.get()
            while len(outbox.sending) >= self._options.concurrency:
                outbox.slot_free.clear()
                await outbox.slot_free.wait()
            send = asyncio.create_task(self._send(delivery), name=f"webhook-{delivery.event_id}")
            outbox.sending.add(send)
            send.add_done_callback(outbox.sending.discard)
            send.add_done_callback(lambda _: outbox.slot_free.set())
            send.add_done_callback(_log_death)

    async def _send(self, delivery: Delivery) -> None:
        try:
            delivered = await self._attempt(delivery)
        except Exception:
            # Counted as a failed attempt (and retried); the error is logged once here.
            logger.exception("webhook attempt crashed for event %s", delivery.event_id)
            delivered = False
        self._after_attempt(delivery, delivered)

    def _after_attempt(self, delivery: Delivery, delivered: bool) -> None:
        if delivered:
            self._pending -= 1
            return
        if delivery.retry_count >= self._options.retries:
            self._pending -= 1
            self._failed += 1
            logger.warning(
                "giving up on %s %s for match %s after %s attempts",
                delivery.event,
                delivery.event_id,
                delivery.match_id,
                delivery.retry_count + 1,
            )
            return
        delay = self._options.backoff_s * (2**delivery.retry_count)
        delivery.retry_count += 1
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def requeue() -> None:
            if timer is not None:
                self._timers.discard(timer)
            self._outbox(delivery.subscription).queue.put_nowait(delivery)

        timer = loop.call_later(delay, requeue)
        self._timers.add(timer)

    async def _attempt(self, delivery: Delivery) -> bool:
        if self._session is None:
            raise RuntimeError("deliverer is not started")
        subscription = delivery.subscription
        body = envelope(
            event=delivery.event,
            payload=delivery.payload,
            event_id=delivery.event_id,
            transaction_id=delivery.transaction_id,
            third_party_id=subscription.third_party_id,
            app_id=self.app_id,
            timestamp=delivery.timestamp,
            retry_count=delivery.retry_count,
        )
        headers = {}
        if subscription.header_name and subscription.header_value:
            headers[subscription.header_name] = subscription.header_value
        params = {}
        if subscription.query_param and subscription.query_value:
            params[subscription.query_param] = subscription.query_value
        status: int | None = None
        error: str | None = None
        started = time.monotonic()
        try:
            async with self._session.post(
                subscription.url,
                json=body,
                headers=headers,
                params=params,
                timeout=aiohttp.ClientTimeout(total=self._options.timeout_s),
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._attempts.append(
            Attempt(
                delivery_id=delivery.delivery_id,
                subscription_id=subscription.subscription_id,
                event=delivery.event,
                event_id=delivery.event_id,
                match_id=delivery.match_id,
                copy=delivery.copy,
                retry_count=delivery.retry_count,
                status=status,
                error=error,
                at=self._clock(),
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )
        )
        logger.info(
            "webhook %s %s for match %s retry %s -> %s",
            delivery.event,
            delivery.event_id,
            delivery.match_id,
            delivery.retry_count,
            status if status is not None else error,
        )
        return status is not None and 200 <= status < 300
