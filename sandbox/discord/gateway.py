"""The Discord gateway (WebSocket): HELLO, heartbeats, IDENTIFY, RESUME, chunks, dispatches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from sandbox.discord import payloads
from sandbox.discord.config import GUILD_MEMBERS_INTENT, SandboxConfig
from sandbox.discord.event_order import EventOrder
from sandbox.discord.state import SandboxState

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE_UPDATE, VOICE_STATE_UPDATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_GUILD_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = (
    6,
    7,
    8,
    9,
    10,
    11,
)
REQUEST_SOUNDBOARD_SOUNDS = 31
GUILDS_INTENT = 1 << 0
GUILD_VOICE_STATES_INTENT = 1 << 7
GUILD_MESSAGES_INTENT = 1 << 9
CHUNK_SIZE = 1000
KNOWN_INTENTS = sum(1 << bit for bit in (*range(17), 20, 21, 24, 25))
"""Every intent Discord defines; IDENTIFY asking for another bit is closed with 4013."""
NEW_SESSION_CLOSE_CODES = frozenset({4007, 4009})
"""Invalid seq and session timed out: Discord says to reconnect and start a new session."""
LARGE_THRESHOLD_RANGE = (50, 250)


@dataclass(eq=False)
class Connection:
    """One open WebSocket and the queue of frames waiting to be written to it."""

    ws: web.WebSocketResponse
    outbox: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    acks_heartbeats: bool = True
    """False once the no-heartbeat-ACK fault zombied this connection."""


@dataclass
class Session:
    """A gateway session: survives disconnects and keeps recent dispatches for RESUME."""

    id: str
    intents: int
    buffer: deque[dict[str, Any]]
    seq: int = 0
    connection: Connection | None = None
    resumes: int = 0
    large_threshold: int = LARGE_THRESHOLD_RANGE[0]

    def push(self, event: str, data: dict[str, Any]) -> None:
        """Number a dispatch, keep it for replay and send it if connected."""
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.buffer.append(frame)
        if self.connection is not None:
            self.connection.outbox.put_nowait(frame)


class Gateway:
    """Serves the gateway WebSocket and fans dispatches out to the bot's sessions."""

    def __init__(
        self,
        *,
        state: SandboxState,
        config: SandboxConfig,
        bot_token: str,
        order: EventOrder | None = None,
    ) -> None:
        self._state = state
        self.order = order or EventOrder()
        self._config = config
        self._bot_token = bot_token
        self.sessions: dict[str, Session] = {}
        self._open = asyncio.Event()
        self._open.set()
        self._connections: set[Connection] = set()

    def dispatch(self, event: str, data: dict[str, Any], *, intent: int | None) -> None:
        """Send an event to every session whose intents include `intent` (None: always).

        Under the events-after-answer fault, events caused by a REST call wait for its answer.
        """
        channel_id = int(data["id"]) if event == "CHANNEL_CREATE" else None
        if self.order.hold(lambda: self._send(event, data, intent), channel_id=channel_id):
            return
        self._send(event, data, intent)

    def _send(self, event: str, data: dict[str, Any], intent: int | None) -> None:
        for session in self.sessions.values():
            if intent is None or session.intents & intent:
                session.push(event, data)

    def dispatch_guild_create(self, guild_id: int) -> None:
        """Tell sessions about a guild, filtering members by each session's intents."""
        for session in self.sessions.values():
            if session.intents & GUILDS_INTENT:
                session.push("GUILD_CREATE", self._guild_create(session, guild_id))

    def _guild_create(self, session: Session, guild_id: int) -> dict[str, Any]:
        return payloads.guild_create(
            self._state,
            self._state.guilds[guild_id],
            intents=session.intents,
            large_threshold=session.large_threshold,
        )

    def stop_heartbeat_acks(self) -> int:
        """Zombie the open connections: they stop ACKing heartbeats; returns how many."""
        for conn in self._connections:
            conn.acks_heartbeats = False
        return len(self._connections)

    async def close(self, code: int, *, hold: bool = False, invalidate: bool = False) -> int:
        """Close every open connection with `code`; `hold` keeps new ones waiting until release.

        4007 and 4009 also end the sessions, so a RESUME after them gets op 9.
        """
        if hold:
            self._open.clear()
        if invalidate:
            self.sessions.clear()
        connections = list(self._connections)
        for conn in connections:
            for session in list(self.sessions.values()):
                if session.connection is conn:
                    session.connection = None
                    if code in NEW_SESSION_CLOSE_CODES:
                        del self.sessions[session.id]
            conn.outbox.put_nowait(None)
            await conn.ws.close(code=code, message=b"sandbox close")
        return len(connections)

    def release(self) -> None:
        """Let held connections proceed."""
        self._open.set()

    def describe(self) -> dict[str, Any]:
        """Sessions and connection state, as JSON."""
        return {
            "held": not self._open.is_set(),
            "connections": len(self._connections),
            "sessions": [
                {
                    "session_id": s.id,
                    "intents": s.intents,
                    "seq": s.seq,
                    "connected": s.connection is not None,
                    "resumes": s.resumes,
                }
                for s in self.sessions.values()
            ],
        }

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """One gateway connection, from HELLO to close."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        conn = Connection(ws=ws)
        self._connections.add(conn)
        writer = asyncio.create_task(self._write(conn))
        session: Session | None = None
        try:
            await self._open.wait()
            conn.outbox.put_nowait(
                {"op": HELLO, "d": {"heartbeat_interval": self._config.heartbeat_interval_ms}}
            )
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                data = frame.get("d")
                if op == HEARTBEAT:
                    if conn.acks_heartbeats:
                        conn.outbox.put_nowait({"op": HEARTBEAT_ACK})
                elif op == IDENTIFY:
                    if session is not None:
                        await ws.close(code=4005, message=b"Already authenticated.")
                        break
                    session = await self._identify(conn, data or {}, f"ws://{request.host}/gateway")
                    if session is None:
                        break
                elif op == RESUME:
                    session = await self._resume(conn, data or {})
                    if session is None and ws.closed:
                        break
                elif session is None:
                    await ws.close(code=4003, message=b"Not authenticated.")
                    break
                elif op == REQUEST_GUILD_MEMBERS:
                    self._chunk(session, data or {})
                elif op in (PRESENCE_UPDATE, VOICE_STATE_UPDATE, REQUEST_SOUNDBOARD_SOUNDS):
                    continue
                else:
                    await ws.close(code=4001, message=b"Unknown opcode.")
                    break
        finally:
            if session is not None and session.connection is conn:
                session.connection = None
            self._connections.discard(conn)
            conn.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _write(self, conn: Connection) -> None:
        while True:
            frame = await conn.outbox.get()
            if frame is None or conn.ws.closed:
                return
            try:
                await conn.ws.send_str(json.dumps(frame))
            except ConnectionError:
                log.info("gateway peer went away while writing")
                return

    async def _identify(self, conn: Connection, data: dict[str, Any], url: str) -> Session | None:
        if data.get("token") != self._bot_token:
            log.info("gateway IDENTIFY with a bad token")
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        if intents < 0 or intents & ~KNOWN_INTENTS:
            await conn.ws.close(code=4013, message=b"Invalid intent(s).")
            return None
        privileged = GUILD_MEMBERS_INTENT | (1 << 8) | (1 << 15)
        if intents & privileged & ~self._config.privileged_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        for stale in [s for s in self.sessions.values() if s.connection is None]:
            del self.sessions[stale.id]
        session = Session(
            id=secrets.token_hex(16),
            intents=intents,
            buffer=deque(maxlen=self._config.replay_buffer),
            connection=conn,
            large_threshold=min(
                max(int(data.get("large_threshold") or 0), LARGE_THRESHOLD_RANGE[0]),
                LARGE_THRESHOLD_RANGE[1],
            ),
        )
        self.sessions[session.id] = session
        bot = self._state.bot
        session.push(
            "READY",
            {
                "v": 10,
                "user": {**payloads.user(bot), "verified": True, "mfa_enabled": False},
                "guilds": [{"id": str(g), "unavailable": True} for g in self._state.guilds],
                "session_id": session.id,
                "resume_gateway_url": url,
                "session_type": "normal",
                "application": {"id": str(bot.id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "geo_ordered_rtc_regions": [],
                "shard": [0, 1],
                "_trace": ["discord-sandbox"],
            },
        )
        for guild in self._state.guilds.values():
            if intents & GUILDS_INTENT:
                session.push("GUILD_CREATE", self._guild_create(session, guild.id))
        log.info("gateway session %s identified with intents %s", session.id, intents)
        return session

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> Session | None:
        if data.get("token") != self._bot_token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return None
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq") or 0
        oldest = session.buffer[0]["s"] if session and session.buffer else 1
        if session is None or seq < oldest - 1 or seq > session.seq:
            log.info("gateway RESUME refused for session %s", data.get("session_id"))
            conn.outbox.put_nowait({"op": INVALID_SESSION, "d": False})
            return None
        for frame in session.buffer:
            if frame["s"] > seq:
                conn.outbox.put_nowait(frame)
        session.connection = conn
        session.resumes += 1
        session.push("RESUMED", {"_trace": ["discord-sandbox"]})
        log.info("gateway session %s resumed from seq %s", session.id, seq)
        return session

    def _chunk(self, session: Session, data: dict[str, Any]) -> None:
        guild = self._state.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        query = str(data.get("query") or "").lower()
        limit = int(data.get("limit") or 0)
        wanted = {int(u) for u in data.get("user_ids") or []}
        members = [
            m
            for uid, m in guild.members.items()
            if (not wanted or uid in wanted)
            and self._state.users[uid].username.lower().startswith(query)
        ]
        if limit:
            members = members[:limit]
        not_found = sorted(wanted - {m.user_id for m in members})
        chunks = [members[i : i + CHUNK_SIZE] for i in range(0, len(members), CHUNK_SIZE)] or [[]]
        for index, chunk in enumerate(chunks):
            payload: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": [payloads.member(self._state, m) for m in chunk],
                "chunk_index": index,
                "chunk_count": len(chunks),
            }
            if index == 0 and not_found:
                payload["not_found"] = [str(u) for u in not_found]
            if data.get("nonce") is not None:
                payload["nonce"] = data["nonce"]
            session.push("GUILD_MEMBERS_CHUNK", payload)
