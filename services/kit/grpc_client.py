"""Client side of gRPC: one channel per target, bearer token and default deadline on every call."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

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


def is_balanced(target: str) -> bool:
    """Whether `target` names its resolver, so calls go to every (healthy) address it has."""
    return target.startswith(_RESOLVERS)


class _CallDefaults:
    """Adds `authorization: Bearer <token>` (when set) and a deadline to calls that lack them."""

    def __init__(self, *, token: str | None, timeout: float | None) -> None:
        self._token = token
        self._timeout = timeout

    def details(self, call: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        """`call` with the token and default deadline filled in."""
        metadata = grpc.aio.Metadata(*tuple(call.metadata or ()))
        if self._token and "authorization" not in metadata:
            metadata.add("authorization", f"Bearer {self._token}")
        timeout = call.timeout if call.timeout is not None else self._timeout
        return grpc.aio.ClientCallDetails(
            call.method, timeout, metadata, call.credentials, call.wait_for_ready
        )


# One class per call kind: grpc.aio files each interceptor under the first kind it is an
# instance of, so one object of all four kinds would only ever see unary-unary calls.
class _UnaryUnaryDefaults(_CallDefaults, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, call: Any, request: Any) -> Any:
        return await continuation(self.details(call), request)


class _UnaryStreamDefaults(_CallDefaults, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, call: Any, request: Any) -> Any:
        return await continuation(self.details(call), request)


class _StreamUnaryDefaults(_CallDefaults, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, call: Any, requests: Any) -> Any:
        return await continuation(self.details(call), requests)


class _StreamStreamDefaults(_CallDefaults, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, call: Any, requests: Any) -> Any:
        return await continuation(self.details(call), requests)


def call_defaults(*, token: str | None, timeout: float | None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding the bearer token and default deadline to calls of every kind."""
    kinds = (_UnaryUnaryDefaults, _UnaryStreamDefaults, _StreamUnaryDefaults, _StreamStreamDefaults)
    return [kind(token=token, timeout=timeout) for kind in kinds]


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
        self._interceptors = call_defaults(token=plain or None, timeout=timeout)
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
            channel = grpc.aio.insecure_channel(
                target, options=options, interceptors=self._interceptors
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
