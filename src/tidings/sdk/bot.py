"""A small bot framework on top of :class:`tidings.sdk.Client`.

::

    bot = Bot("http://127.0.0.1:8080", token=os.environ["TIDINGS_BOT_TOKEN"])

    @bot.command("ping")
    async def ping(ctx: Context) -> None:
        await ctx.reply("pong")

    @bot.on_mention
    async def hello(ctx: Context) -> None:
        await ctx.reply(f"hello, you said {ctx.text!r}")

    bot.run()   # until SIGINT/SIGTERM, then a clean shutdown

A bot sees the messages of the conversations it is a member of (add it to a group
or channel like any user; a direct conversation with it works too). It never reacts
to its own messages. Handlers run concurrently, each in its own task; an exception in
a handler is logged and the bot goes on. :meth:`Bot.stop` (or a signal) stops reading
events, lets running handlers finish for ``shutdown_timeout`` seconds, cancels the
rest and closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from tidings.sdk.client import Client, EventStream, UploadSource
from tidings.sdk.errors import StreamClosed
from tidings.sdk.models import CommandInvoked, Event, File, Message, MessageSent, User

__all__ = ["Bot", "CommandContext", "CommandHandler", "Context", "Handler", "parse_duration"]

log = logging.getLogger("tidings.sdk.bot")

_COMMAND_RE = re.compile(r"^/([A-Za-z0-9_][A-Za-z0-9_-]*)(?:@(\S+))?(?:\s+(.*))?$", re.DOTALL)
_DURATION_RE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|m|min|mins|h|hr|hrs|d|w)", re.IGNORECASE
)
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


def parse_duration(text: str) -> float | None:
    """Seconds in ``10m``, ``1h30m``, ``90s``, ``2d``; None if ``text`` is not a duration."""
    text = text.strip()
    if not text:
        return None
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos = match.end()
    if pos != len(text):
        return None
    return total


@dataclass(slots=True)
class Context:
    """What a handler gets: the message, who the bot is, and ways to answer.

    For a command, ``command`` is its name and ``args`` the text after it
    (``/remind 10m stand-up`` → ``command="remind"``, ``args="10m stand-up"``).
    ``text`` is the body without a leading mention of the bot.
    """

    bot: Bot
    message: Message
    text: str
    command: str | None = None
    args: str = ""
    mentioned: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def client(self) -> Client:
        """The bot's SDK client, for anything beyond replying."""
        return self.bot.client

    @property
    def conversation_id(self) -> str:
        """Where the message was sent."""
        return self.message.conversation_id

    @property
    def argv(self) -> list[str]:
        """``args`` split on whitespace."""
        return self.args.split()

    async def reply(self, body: str, *, files: Sequence[UploadSource] = ()) -> Message:
        """Answer the message with a quote-reply (``reply_to_seq`` = its seq); each of
        ``files`` (a path, bytes, or an already uploaded :class:`File`) is attached."""
        return await self.client.send(
            self.message.conversation_id,
            body,
            reply_to_seq=self.message.seq,
            attachments=await self._uploaded(files),
        )

    async def send(self, body: str, *, files: Sequence[UploadSource] = ()) -> Message:
        """Post in the same conversation, without quoting the message (``files`` as
        for :meth:`reply`)."""
        return await self.client.send(
            self.message.conversation_id, body, attachments=await self._uploaded(files)
        )

    async def _uploaded(self, files: Sequence[UploadSource]) -> list[str]:
        ids = []
        for source in files:
            if isinstance(source, File):
                ids.append(source.id)
            else:
                ids.append((await self.client.upload(source)).id)
        return ids

    async def react(self, emoji: str) -> None:
        """Put a reaction on the message."""
        await self.client.react(self.message.conversation_id, self.message.seq, emoji)


Handler = Callable[[Context], Awaitable[None]]
"""An async function taking a :class:`Context`."""


@dataclass(slots=True)
class CommandContext:
    """What a slash command handler gets (:meth:`Bot.slash_command`): a registered
    ``/command`` whose target is this bot was invoked by ``user`` in
    ``conversation_id`` with ``text``. Answer with :meth:`respond` (a few times, until
    the invocation expires)."""

    bot: Bot
    invoked: CommandInvoked

    @property
    def command(self) -> str:
        return self.invoked.command

    @property
    def text(self) -> str:
        return self.invoked.text

    @property
    def argv(self) -> list[str]:
        return self.invoked.text.split()

    @property
    def user(self) -> User:
        """Who invoked it."""
        return self.invoked.user

    @property
    def conversation_id(self) -> str:
        return self.invoked.conversation_id or ""

    async def respond(self, text: str, *, in_channel: bool = False) -> None:
        """Answer: to the caller only (default), or in the conversation for everyone
        (``in_channel``, posted as this bot)."""
        await self.bot.client.respond_to_command(
            self.invoked.response_url, text, in_channel=in_channel
        )


CommandHandler = Callable[[CommandContext], Awaitable[None]]
"""An async function taking a :class:`CommandContext`."""


class Bot:
    """Dispatches the messages a bot account receives to registered handlers.

    Authenticate with a bot token (``token=``) or with ``username``/``password``.
    Dispatch order for each message from someone else:

    1. a body starting with ``/name`` (optionally after a mention of the bot) calls
       the handler of command ``name``, if there is one (else ``on_unknown_command``);
    2. otherwise, if the message mentions the bot, the ``on_mention`` handlers;
    3. every message (commands and mentions included) also goes to the
       ``on_message`` handlers.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client: Client | None = None,
        shutdown_timeout: float = 5.0,
        since: str | None = None,
    ) -> None:
        """Create a bot for the server at ``url``; nothing connects before :meth:`start`."""
        if client is None:
            client = Client(url, token=token)
        elif token is not None:
            client.token = token
        if client.token is None and (username is None or password is None):
            raise ValueError("a bot needs a token or a username and password")
        self.client = client
        self._username = username
        self._password = password
        self.shutdown_timeout = shutdown_timeout
        self.since = since
        self.user: User | None = None
        """The bot's own account, once started."""
        self._message_handlers: list[Handler] = []
        self._mention_handlers: list[Handler] = []
        self._event_handlers: list[Callable[[Event], Awaitable[None]]] = []
        self._commands: dict[str, Handler] = {}
        self._slash_commands: dict[str, CommandHandler] = {}
        self._unknown_command: Handler | None = None
        self._startup: list[Callable[[], Awaitable[None]]] = []
        self._shutdown: list[Callable[[], Awaitable[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._stream: EventStream | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._stopped = False
        self.handled = 0
        """How many handler calls completed (successfully or not)."""
        self.errors = 0
        """How many handler calls raised."""

    # ------------------------------------------------------------------ registration

    def on_message(self, handler: Handler) -> Handler:
        """Decorator: call ``handler`` for every message from someone else."""
        self._message_handlers.append(handler)
        return handler

    def on_mention(self, handler: Handler) -> Handler:
        """Decorator: call ``handler`` for messages that mention the bot (``@botname``)."""
        self._mention_handlers.append(handler)
        return handler

    def on_event(
        self, handler: Callable[[Event], Awaitable[None]]
    ) -> Callable[[Event], Awaitable[None]]:
        """Decorator: call ``handler`` with every raw event (its own messages included)."""
        self._event_handlers.append(handler)
        return handler

    def command(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: call the handler for ``/name args``."""

        def register(handler: Handler) -> Handler:
            self._commands[name.lower()] = handler
            return handler

        return register

    def slash_command(self, name: str) -> Callable[[CommandHandler], CommandHandler]:
        """Decorator: answer the registered slash command ``/name`` whose target is this
        bot (an admin registers it: ``tidings commands create NAME --bot BOT``)::

            @bot.slash_command("deploy")
            async def deploy(ctx: CommandContext) -> None:
                await ctx.respond(f"deploying {ctx.text}...", in_channel=True)
        """

        def register(handler: CommandHandler) -> CommandHandler:
            self._slash_commands[name.lower().removeprefix("/")] = handler
            return handler

        return register

    def on_unknown_command(self, handler: Handler) -> Handler:
        """Decorator: call ``handler`` for a ``/name`` that no command handles."""
        self._unknown_command = handler
        return handler

    def on_startup(self, func: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Decorator: run ``func`` once connected, before any message is handled."""
        self._startup.append(func)
        return func

    def on_shutdown(self, func: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Decorator: run ``func`` during shutdown, after the handlers stopped."""
        self._shutdown.append(func)
        return func

    @property
    def commands(self) -> list[str]:
        """Registered command names."""
        return sorted(self._commands)

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        """Log in if needed, learn who the bot is and open the live stream."""
        if self.client.token is None and self._username and self._password:
            await self.client.login(self._username, self._password, device="bot")
        self.user = await self.client.me()
        self._stream = await self.client.subscribe(self.since, ephemeral=False)
        for func in self._startup:
            await func()
        self._ready.set()
        log.info("bot %s ready", self.user.username)

    async def wait_ready(self) -> None:
        """Wait until :meth:`start` has finished (useful when ``serve`` runs in a task)."""
        await self._ready.wait()

    async def serve(self) -> None:
        """Start (if needed) and handle messages until :meth:`stop`; then shut down cleanly.

        If the server refuses the bot (token revoked, account disabled: close
        4001/4003), the bot shuts down cleanly and the :class:`StreamClosed` is
        raised again, so that a supervisor sees the failure.
        """
        if self._stream is None:
            await self.start()
        stream = self._stream
        assert stream is not None
        stopper = asyncio.ensure_future(self._stop.wait())
        refused: StreamClosed | None = None
        try:
            while not self._stop.is_set():
                getter = asyncio.ensure_future(stream.__anext__())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await getter
                    break
                try:
                    event = getter.result()
                except StopAsyncIteration:
                    break
                except StreamClosed as exc:
                    log.error("bot stream closed by the server: %s", exc)
                    refused = exc
                    break
                self.since = stream.position
                self._dispatch(event)
        finally:
            stopper.cancel()
            await self._shutdown_now()
        if refused is not None:
            raise refused

    def stop(self) -> None:
        """Ask the bot to stop; :meth:`serve` returns after a clean shutdown."""
        self._stop.set()

    def run(self) -> None:
        """Run the bot in a new event loop until SIGINT or SIGTERM, then shut down cleanly."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.stop)
            await self.serve()

        asyncio.run(main())

    async def _shutdown_now(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._stream is not None:
            await self._stream.aclose()
        background = set(self._background)
        for task in background:
            task.cancel()
        if background:
            await asyncio.gather(*background, return_exceptions=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.shutdown_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        for func in self._shutdown:
            try:
                await func()
            except Exception:
                log.exception("bot shutdown hook failed")
        await self.client.aclose()
        log.info("bot stopped")

    def spawn(self, coro: Awaitable[None], *, wait: bool = True) -> asyncio.Task[None]:
        """Run ``coro`` as a task owned by the bot.

        At shutdown the bot waits up to ``shutdown_timeout`` for tasks spawned with
        ``wait=True`` (handlers) and cancels the rest; ``wait=False`` tasks (timers,
        background loops) are cancelled at once.
        """

        async def wrapped() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(wrapped())
        bucket = self._tasks if wait else self._background
        bucket.add(task)
        task.add_done_callback(bucket.discard)
        return task

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, event: Event) -> None:
        for raw_handler in self._event_handlers:
            self.spawn(self._guard(raw_handler(event), _name(raw_handler)))
        if isinstance(event, CommandInvoked):
            slash = self._slash_commands.get(event.command.lower())
            if slash is not None:
                self.spawn(self._guard(slash(CommandContext(self, event)), _name(slash)))
            return
        if not isinstance(event, MessageSent):
            return
        message = event.message
        me = self.user
        if me is None or message.sender_id == me.id or message.deleted:
            return
        ctx = self.context_for(message)
        handlers: list[Handler] = []
        if ctx.command is not None:
            handler = self._commands.get(ctx.command.lower(), self._unknown_command)
            if handler is not None:
                handlers.append(handler)
        elif ctx.mentioned:
            handlers.extend(self._mention_handlers)
        handlers.extend(self._message_handlers)
        for handler in handlers:
            self.spawn(self._guard(handler(ctx), _name(handler)))

    def context_for(self, message: Message) -> Context:
        """Work out mention, command and arguments of ``message`` for this bot."""
        me = self.user
        text = message.body.strip()
        mentioned = False
        if me is not None:
            mentioned = me.id in message.mentions
            tag = f"@{me.username}"
            if text.lower().startswith(tag.lower()):
                mentioned = True
                text = text[len(tag) :].lstrip(" ,:").strip()
            elif re.search(rf"(?<!\w)@{re.escape(me.username)}(?!\w)", text, re.IGNORECASE):
                mentioned = True
        command: str | None = None
        args = ""
        match = _COMMAND_RE.match(text)
        if match is not None:
            target = match.group(2)
            if target is None or me is None or target.lower() == me.username.lower():
                command = match.group(1)
                args = (match.group(3) or "").strip()
        return Context(
            bot=self, message=message, text=text, command=command, args=args, mentioned=mentioned
        )

    async def _guard(self, call: Awaitable[None], name: str) -> None:
        try:
            await call
        except asyncio.CancelledError:
            raise
        except Exception:
            self.errors += 1
            log.exception("bot handler %s failed", name)
        finally:
            self.handled += 1


def _name(func: object) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or func)
