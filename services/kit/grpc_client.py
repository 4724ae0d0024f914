"""Client side of gRPC: one channel per target, bearer token and default deadline on every call."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, TypeAlias

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

logger = logging.getLogger(__name__)

# A target that names its resolver (`dns:///registry.ns.svc.cluster.local:50053`, a headless
# Service; `ipv4:a:p,b:p`) is one of several servers: calls go to every address it resolves
# to, where gRPC's default, pick_first, would pin each client to one replica. A bare
# `host:port` is one server and keeps pick_first, which reconnects at once on the next call
# after that server restarts (round_robin waits out its reconnect backoff first).
# Client-side health checking: round_robin sends only to the addresses whose health service
# says SERVING (the server as a whole, ""), so a replica that is draining on SIGTERM, or a
# voice standby, gets no calls while another serves.
ROUND_ROBIN = (
    "grpc.service_config",
    json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": ""},
        }
    ),
)
_RESOLVERS = ("dns:", "ipv4:", "ipv6:")

Metadata: TypeAlias = grpc.aio.Metadata | Sequence[tuple[str, str | bytes]]
"""A call's metadata, as grpc.aio takes it."""


def is_balanced(target: str) -> bool:
    """Whether `target` names its resolver, so calls go to every (healthy) address it has."""
    return target.startswith(_RESOLVERS)


class _CallDefaults:
    """Adds `authorization: Bearer <token>` (when set) and a deadline to calls that lack them."""

    def __init__(self, *, token: str | None, timeout: float | None) -> None:
        self._entry = ("authorization", f"Bearer {token}") if token else None
        self._timeout = timeout

    def timeout(self, timeout: float | None) -> float | None:
        """The caller's `timeout`, else the default one."""
        return self._timeout if timeout is None else timeout

    def metadata(self, metadata: Metadata | None) -> Metadata | None:
        """The caller's `metadata` with the token added unless it has an authorization entry."""
        if self._entry is None:
            return metadata
        if not metadata:
            return (self._entry,)
        if any(key == "authorization" for key, _ in metadata):
            return metadata
        return (*tuple(metadata), self._entry)


class _Defaulted:
    """grpc's own multicallable of any kind, called with the defaults filled in.

    Not a grpc.aio client interceptor: those run every call through a task of their own
    first, a turn of the event loop before the call even starts (bench/findings.md, Round 9).
    """

    def __init__(self, call: Any, defaults: _CallDefaults) -> None:
        self._call, self._defaults = call, defaults

    def __call__(
        self,
        request: Any = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """The call (the request, or a stream's request iterator) with token and deadline."""
        return self._call(
            request,
            timeout=self._defaults.timeout(timeout),
            metadata=self._defaults.metadata(metadata),
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )


class _DefaultsChannel(grpc.aio.Channel):
    """`channel`, whose calls of every kind carry `defaults` (token and deadline)."""

    def __init__(self, channel: grpc.aio.Channel, defaults: _CallDefaults) -> None:
        self._channel = channel
        self._defaults = defaults

    async def __aenter__(self) -> _DefaultsChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._channel.close()

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channel.channel_ready()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Defaulted(self._channel.unary_unary(method, *args, **kwargs), self._defaults)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Defaulted(self._channel.unary_stream(method, *args, **kwargs), self._defaults)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Defaulted(self._channel.stream_unary(method, *args, **kwargs), self._defaults)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Defaulted(self._channel.stream_stream(method, *args, **kwargs), self._defaults)


class GrpcClients:
    """Keeps one insecure grpc.aio channel per target; `close()` closes them all.

    Every call made on these channels carries the bearer token (when set) and, unless the
    caller passes `timeout=`, a deadline of `timeout` seconds (long-lived streams such as
    health Watch must pass their own).
    """

    def __init__(
        self,
        *,
        token: SecretStr | str | None = None,
        timeout: float = 10.0,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        plain = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._defaults = _CallDefaults(token=plain or None, timeout=timeout)
        self._options = tuple(options)
        self._balanced = ROUND_ROBIN[0] not in {name for name, _ in options}
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, target: str) -> grpc.aio.Channel:
        """The channel to `target` (`host:port`, or `dns:///host:port`), created on first use."""
        channel = self._channels.get(target)
        if channel is None:
            options = self._options
            if self._balanced and is_balanced(target):
                options += (ROUND_ROBIN,)
            channel = _DefaultsChannel(
                grpc.aio.insecure_channel(target, options=options), self._defaults
            )
            self._channels[target] = channel
        return channel

    async def wait_for_ready(self, target: str, timeout: float, *, service: str = "") -> None:
        """Wait until `target` reports SERVING (see the module function)."""
        await wait_for_ready(target, timeout, service=service, channel=self.channel(target))

    async def close(self, grace: float | None = None) -> None:
        """Close every channel (in-flight calls get `grace` seconds)."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(grace)


async def wait_for_ready(
    target: str,
    timeout: float,
    *,
    service: str = "",
    channel: grpc.aio.Channel | None = None,
) -> None:
    """Return once the health service at `target` says `service` is SERVING.

    Raises TimeoutError naming the target and the last answer after `timeout` seconds.
    """
    own = channel is None
    active = grpc.aio.insecure_channel(target) if channel is None else channel
    stub = health_pb2_grpc.HealthStub(active)
    deadline = time.monotonic() + timeout
    last: object = "no answer"
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"gRPC server at {target} not SERVING {service or '(server)'} within "
                    f"{timeout:g}s; last: {last}"
                )
            try:
                response = await stub.Check(
                    health_pb2.HealthCheckRequest(service=service),
                    timeout=remaining,
                    wait_for_ready=True,
                )
            except grpc.aio.AioRpcError as error:
                last = f"{error.code().name} {error.details()}"
            else:
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            await asyncio.sleep(min(0.05, max(deadline - time.monotonic(), 0)))  # poll interval
    finally:
        if own:
            await active.close()
