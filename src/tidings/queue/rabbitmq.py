"""The RabbitMQ queue (scale-out), through aio-pika.

Topology, every name under `prefix` (a setting: one RabbitMQ serves several sites or
test runs), all durable:

    exchange  <prefix>.jobs       direct; routing key = the job's queue
    queue     <prefix>.jobs.<q>   one per JobPolicy.queue; dead letters go to ...
    exchange  <prefix>.dead       fanout, the dead-letter exchange
    queue     <prefix>.dead       what failed for good, with its payload (also in the DB)

Messages are persistent and published with publisher confirms (`publish` returns once
RabbitMQ has them on disk); consumers ack only after the job's outcome is committed, with
a prefetch bound. A consumer that dies holding messages (SIGKILL) has them delivered
again, flagged `redelivered`; retries are not broker round-trips: the job service puts
a failed job back in the outbox, due after its backoff, and the relay publishes it again.
The robust connection reconnects (and re-declares, re-consumes) after a broker restart;
while the broker is away `publish` raises and the jobs wait in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import aio_pika
import orjson
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    ConsumerTag,
)

from tidings.core.jobs import JobRecord
from tidings.queue.ports import Deliver

log = structlog.get_logger(__name__)
REDELIVER_PAUSE_S = 1.0  # after a delivery failed for want of the database
PUBLISH_TIMEOUT_S = 10.0


class RabbitQueue:
    in_process = False

    def __init__(self, url: str, prefix: str, queues: Sequence[str] = ("default",)) -> None:
        self.url = url
        self.prefix = prefix
        self._queue_names = set(queues)
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consume_channel: AbstractChannel | None = None
        self._consumers: list[tuple[AbstractQueue, ConsumerTag]] = []
        self._declared: set[str] = set()
        self._lock = asyncio.Lock()

    def queue_name(self, queue: str) -> str:
        return f"{self.prefix}.jobs.{queue}"

    @property
    def dead_name(self) -> str:
        return f"{self.prefix}.dead"

    async def start(self) -> None:
        async with self._lock:
            if self._connection is not None:
                return
            connection = await aio_pika.connect_robust(
                self.url, client_properties={"connection_name": f"tidings {self.prefix}"}
            )
            try:
                channel = await connection.channel(publisher_confirms=True)
                self._exchange = await channel.declare_exchange(
                    f"{self.prefix}.jobs", aio_pika.ExchangeType.DIRECT, durable=True
                )
                dead_exchange = await channel.declare_exchange(
                    self.dead_name, aio_pika.ExchangeType.FANOUT, durable=True
                )
                dead = await channel.declare_queue(self.dead_name, durable=True)
                await dead.bind(dead_exchange)
            except BaseException:
                await connection.close()
                raise
            self._connection, self._publish_channel = connection, channel
            for name in sorted(self._queue_names):
                await self._declare(name)

    async def _declare(self, queue: str) -> AbstractQueue:
        assert self._publish_channel is not None and self._exchange is not None
        declared = await self._publish_channel.declare_queue(
            self.queue_name(queue),
            durable=True,
            arguments={"x-dead-letter-exchange": self.dead_name},
        )
        await declared.bind(self._exchange, routing_key=queue)
        self._declared.add(queue)
        return declared

    async def publish(self, jobs: Sequence[JobRecord]) -> None:
        if self._exchange is None:
            await self.start()
        assert self._exchange is not None
        for queue in {j.queue for j in jobs} - self._declared:
            await self._declare(queue)
        exchange = self._exchange
        # Confirms are awaited together: one round trip for the batch, not one per job.
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        orjson.dumps(
                            {"id": j.id, "kind": j.kind, "payload": j.payload, "queue": j.queue}
                        ),
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=j.id,
                        type=j.kind,
                    ),
                    routing_key=j.queue,
                    mandatory=True,
                    timeout=PUBLISH_TIMEOUT_S,
                )
                for j in jobs
            )
        )

    async def consume(self, queues: Sequence[str], deliver: Deliver, prefetch: int) -> None:
        if self._connection is None:
            await self.start()
        assert self._connection is not None
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        self._consume_channel = channel

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                job_id = orjson.loads(message.body)["id"]
                if not isinstance(job_id, str):
                    raise TypeError("job id is not a string")
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.error("job_message_unreadable", message_id=message.message_id)
                await message.reject(requeue=False)  # to the dead-letter queue, as it is
                return
            try:
                dead = await deliver(job_id, bool(message.redelivered))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker gives it to us again
                log.warning("job_delivery_failed", job_id=job_id, error=type(exc).__name__)
                await asyncio.sleep(REDELIVER_PAUSE_S)
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)
                return
            with contextlib.suppress(Exception):  # a lost ack: delivered again, skipped
                if dead:
                    await message.reject(requeue=False)
                else:
                    await message.ack()

        for queue in queues:
            self._queue_names.add(queue)
            declared = await channel.declare_queue(
                self.queue_name(queue),
                durable=True,
                arguments={"x-dead-letter-exchange": self.dead_name},
            )
            if self._exchange is not None:
                await declared.bind(self._exchange, routing_key=queue)
            tag = await declared.consume(on_message)
            self._consumers.append((declared, tag))

    async def stop_consuming(self) -> None:
        consumers, self._consumers = self._consumers, []
        for queue, tag in consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        if self._consume_channel is not None:
            with contextlib.suppress(Exception):
                await self._consume_channel.close()
            self._consume_channel = None

    async def depths(self) -> dict[str, int]:
        if self._connection is None:
            await self.start()
        assert self._connection is not None
        found: dict[str, int] = {}
        async with self._connection.channel() as channel:
            for name in [*(self.queue_name(q) for q in sorted(self._queue_names)), self.dead_name]:
                try:
                    queue = await channel.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelClosed:
                    break  # a passive declare of a missing queue closes the channel
                count = queue.declaration_result.message_count
                found[name] = int(count or 0)
        return found

    async def purge_dead(self) -> int:
        if self._connection is None:
            await self.start()
        assert self._connection is not None
        async with self._connection.channel() as channel:
            queue = await channel.declare_queue(self.dead_name, durable=True)
            result = await queue.purge()
        return int(getattr(result, "message_count", 0) or 0)

    async def ping(self) -> None:
        if self._connection is None:
            await self.start()
        assert self._connection is not None
        if self._connection.is_closed:
            raise ConnectionError("RabbitMQ connection is closed (reconnecting)")
        async with self._connection.channel():
            pass

    async def delete_everything(self) -> None:
        """Remove this prefix's exchanges and queues (tests clean up with it)."""
        if self._connection is None:
            return
        async with self._connection.channel() as channel:
            for queue in sorted(self._queue_names):
                with contextlib.suppress(Exception):
                    await channel.queue_delete(self.queue_name(queue))
            for name in (self.dead_name,):
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
            for exchange in (f"{self.prefix}.jobs", self.dead_name):
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(exchange)

    async def close(self) -> None:
        await self.stop_consuming()
        connection, self._connection = self._connection, None
        self._publish_channel = self._exchange = None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
