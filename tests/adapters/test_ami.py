"""AmiClient against the fake AMI server: one test per guard, each also run on naive panoramisk.

A guard test parametrised with `guard(...)` runs twice: on `AmiClient` (must pass) and on
`NaiveAmiClient`, panoramisk 1.4 used the obvious way (must fail, with the given exception:
`xfail(strict=True, raises=...)`). So each guard is shown to catch the panoramisk behaviour it
exists for, not an artefact of the fake server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from ivr_agent import ami
from ivr_agent.ami import CONNECTED, DISCONNECTED, AmiClient, backoff_delay
from ivr_agent.config import AmiConfig
from ivr_agent.errors import AmiActionFailed, AmiDisconnected, AmiNotReady, AmiTimeout

from .fakeami import FULLY_BOOTED, SECRET, FakeAmi, FakeConn, NaiveAmiClient, encode

T = 0.5  # how long a test waits for something ours does at once
NAIVE_T = 0.3  # where naive panoramisk would wait forever, this is long enough to show it
DID_NOT_RAISE = pytest.fail.Exception

Make = Callable[..., Any]


def guard(raises: type[BaseException], panoramisk_does: str) -> pytest.MarkDecorator:
    naive = pytest.mark.xfail(raises=raises, reason=f"panoramisk 1.4: {panoramisk_does}")
    return pytest.mark.parametrize("impl", ["ours", pytest.param("naive", marks=naive)])


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def make(fake: FakeAmi) -> AsyncIterator[Make]:
    clients: list[Any] = []

    def build(
        impl: str = "ours",
        *,
        secret: str = SECRET,
        queue_size: int | None = None,
        events: frozenset[str] | None = None,
        **cfg: Any,
    ) -> Any:
        settings = dataclasses.replace(
            AmiConfig(),
            host="127.0.0.1",
            port=fake.port,
            username="ivr",
            connect_timeout=0.5,
            action_timeout=0.5,
            ping_interval=0.2,
            ping_timeout=0.2,
            reconnect_min=0.05,
            reconnect_max=0.2,
            event_queue_size=1000,
        )
        settings = dataclasses.replace(settings, **cfg)
        if impl == "ours":
            client = AmiClient(settings, secret, queue_size=queue_size, events=events)
        else:
            client = NaiveAmiClient(settings, secret, queue_size=queue_size)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.close()


async def started(client: Any) -> Any:
    await client.start()
    await client.wait_ready(T)
    return client


def patience(impl: str, ours: float = T) -> float:
    return ours if impl == "ours" else NAIVE_T


async def read_until(
    client: Any,
    event: str,
    timeout: float = T,
    nth: int = 1,
) -> list[Any]:
    """Frames up to and including the `nth` whose Event is `event`."""
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        while nth:
            got.append(await client.next_frame())
            nth -= got[-1].get("Event") == event
    return got


def events(frames: list[Any]) -> list[str]:
    return [f["Event"] for f in frames]


# -- 1. ready means logged in and FullyBooted ---------------------------------------------------


@guard(DID_NOT_RAISE, "connect() resolves before Login completes")
async def test_not_ready_until_fullybooted(impl: str, fake: FakeAmi, make: Make) -> None:
    fake.booted_delay = None  # Login succeeds, FullyBooted withheld
    client = make(impl)
    await client.start()
    with pytest.raises(AmiNotReady, match="not ready after"):
        await client.wait_ready(0.2)
    assert not client.ready
    await fake.event(FULLY_BOOTED)
    await client.wait_ready(T)
    assert client.ready
    assert events(await read_until(client, CONNECTED)) == ["FullyBooted", CONNECTED]


@guard(DID_NOT_RAISE, "connect() resolves before Login completes")
async def test_login_never_answered(impl: str, fake: FakeAmi, make: Make) -> None:
    fake.answer_login = False
    client = make(impl)
    await client.start()
    with pytest.raises(AmiNotReady):
        await client.wait_ready(0.2)
    with pytest.raises(AmiNotReady):
        await client.send({"Action": "Ping"})


@guard(DID_NOT_RAISE, "a refused Login only sets authenticated=False, then reconnects")
async def test_wrong_secret_fails_fast_and_never_retries(
    impl: str, fake: FakeAmi, make: Make
) -> None:
    client = make(impl, secret="wrong")
    with capture_logs() as logs:
        await client.start()
        begin = time.monotonic()
        with pytest.raises(AmiNotReady, match="authentication failed"):
            await client.wait_ready(2.0)
        assert time.monotonic() - begin < 0.5  # told at once, not after the deadline
        await asyncio.sleep(0.4)  # eight reconnect_min periods
        with pytest.raises(AmiNotReady, match="authentication failed"):
            await client.send({"Action": "Ping"})
    assert len(fake.conns) == 1
    failed = [e for e in logs if e["event"] == "ami_login_failed"]
    assert failed
    assert failed[0]["log_level"] == "error"
    assert failed[0]["username"] == "ivr"
    assert "wrong" not in repr(logs)


async def test_secret_is_never_logged(fake: FakeAmi, make: Make) -> None:
    with capture_logs() as logs:
        client = await started(make())
        fake.drop_all()
        await read_until(client, CONNECTED, 2.0, nth=2)
        await client.close()
    assert logs
    assert SECRET not in repr(logs)
    assert fake.actions("login")[0]["Secret"] == SECRET


# -- 2. callbacks only enqueue; a full queue is counted and logged, never fatal --------------


@guard(TimeoutError, "QueueFull raised in the callback kills the connection")
async def test_full_queue_drops_are_counted_logged_and_harmless(
    impl: str, fake: FakeAmi, make: Make
) -> None:
    client = await started(make(impl, queue_size=5))
    burst = b"".join(encode({"Event": "Newexten", "Uniqueid": f"1.{i}"}) for i in range(20))
    with capture_logs() as logs:
        await fake.broadcast(burst)
        async with asyncio.timeout(
            patience(impl)
        ):  # the link survives: an action still gets its reply
            assert (await client.send({"Action": "Ping"}))["Ping"] == "Pong"
    # FullyBooted + the IvrAgentConnected marker + 3 events fill the 5 slots; 17 dropped.
    assert client.stats.events_in == 21
    assert client.stats.events_dropped == 17
    dropped = [e for e in logs if e["event"] == "ami_event_dropped"]
    assert len(dropped) == 1  # rate-limited: one line, not 17
    assert dropped[0]["ami_event"] == "Newexten"
    assert dropped[0]["log_level"] == "error"
    got = [client.queue.get_nowait() for _ in range(client.queue.qsize())]
    assert events(got) == ["FullyBooted", CONNECTED, "Newexten", "Newexten", "Newexten"]


async def test_lifecycle_marker_fits_even_when_events_are_dropped(
    fake: FakeAmi, make: Make
) -> None:
    client = await started(make(queue_size=2))
    await fake.broadcast(b"".join(encode({"Event": "VarSet"}) for _ in range(10)))
    async with asyncio.timeout(T):
        while client.stats.events_dropped < 10:
            await asyncio.sleep(0.01)
    fake.drop_all()
    async with asyncio.timeout(T):
        while client.ready:
            await asyncio.sleep(0.01)
    got = [client.queue.get_nowait() for _ in range(client.queue.qsize())]
    assert events(got) == ["FullyBooted", CONNECTED, DISCONNECTED]


async def test_events_the_consumer_does_not_read_are_counted_not_queued(
    fake: FakeAmi, make: Make
) -> None:
    client = await started(make(events=frozenset({"FullyBooted", "Hangup"})))
    burst = b"".join(encode({"Event": e, "Uniqueid": "1.1"}) for e in ("Newexten", "Hangup"))
    await fake.broadcast(burst + encode({"Event": "VarSet"}))
    async with asyncio.timeout(T):  # and the replies to our actions still arrive
        assert (await client.send({"Action": "Ping"}))["Ping"] == "Pong"
    got = [client.queue.get_nowait() for _ in range(client.queue.qsize())]
    assert events(got) == ["FullyBooted", CONNECTED, "Hangup"]
    assert (client.stats.events_in, client.stats.events_ignored) == (4, 2)


# -- 3. every action has a deadline and a typed error; single replies never hang -------------


@guard(TimeoutError, "as_list=None waits forever after 'Added interface to queue'")
async def test_queueadd_returns_on_its_single_reply(impl: str, fake: FakeAmi, make: Make) -> None:
    async def queue_add(conn: FakeConn, action: dict[str, str]) -> None:
        await conn.reply(action, {"Message": "Added interface to queue"})

    fake.on("QueueAdd", queue_add)
    client = await started(make(impl))
    add = {"Action": "QueueAdd", "Queue": "support", "Interface": "Local/agent1@agents/n"}
    async with asyncio.timeout(patience(impl)):
        reply = await client.send(add)
    assert reply["Message"] == "Added interface to queue"


@guard(TimeoutError, "waits for more after 'Originate successfully queued'")
async def test_originate_returns_when_queued_and_result_arrives_as_event(
    impl: str, fake: FakeAmi, make: Make
) -> None:
    async def originate(conn: FakeConn, action: dict[str, str]) -> None:
        await conn.reply(action, {"Message": "Originate successfully queued"})
        await asyncio.sleep(0.05)
        result = {"Event": "OriginateResponse", "ActionID": action["ActionID"]}
        await conn.frame({**result, "Response": "Success", "Channel": "Local/s@caller-talking/n"})

    fake.on("Originate", originate)
    client = await started(make(impl))
    call = {"Action": "Originate", "Channel": "Local/s@caller-talking/n", "Context": "ivr"}
    async with asyncio.timeout(patience(impl)):
        reply = await client.send({**call, "Exten": "s", "Priority": "1"})
    assert reply["Message"] == "Originate successfully queued"
    [sent] = fake.actions("originate")
    assert sent["Async"] == "true"  # added: a synchronous Originate would hold the reply
    result = (await read_until(client, "OriginateResponse"))[-1]
    assert result["ActionID"] == reply["ActionID"]


async def test_originate_is_always_async(fake: FakeAmi, make: Make) -> None:
    client = await started(make())
    with pytest.raises(AmiActionFailed):  # the fake has no Originate handler: Error reply
        await client.send({"Action": "Originate", "Channel": "Local/x", "async": "false"})
    [sent] = fake.actions("originate")
    assert sent["Async"] == "true"
    assert "async" not in sent


@guard(TimeoutError, "actions have no timeout")
async def test_unanswered_action_times_out_with_typed_error(
    impl: str, fake: FakeAmi, make: Make
) -> None:
    async def never(_conn: FakeConn, _action: dict[str, str]) -> None:
        return

    fake.on("Redirect", never)
    client = await started(make(impl, action_timeout=0.2))
    with capture_logs() as logs:
        async with asyncio.timeout(patience(impl)):
            with pytest.raises(AmiTimeout, match="Redirect"):
                await client.send({"Action": "Redirect", "Channel": "Local/x;1"})
    [line] = [e for e in logs if e["event"] == "ami_action_timeout"]
    assert line["action"] == "Redirect"
    assert line["action_id"] == fake.actions("redirect")[0]["ActionID"]
    assert client.stats.actions_timed_out == 1
    assert (await client.send({"Action": "Ping"}))["Response"] == "Success"


async def test_explicit_timeout_overrides_the_default(fake: FakeAmi, make: Make) -> None:
    async def never(_conn: FakeConn, _action: dict[str, str]) -> None:
        return

    fake.on("Status", never)
    client = await started(make(action_timeout=5.0))
    begin = time.monotonic()
    with pytest.raises(AmiTimeout):
        await client.send_list({"Action": "Status"}, timeout=0.1)
    assert time.monotonic() - begin < 0.4


@guard(DID_NOT_RAISE, "Response: Error comes back as an ordinary Message")
async def test_error_response_raises_action_failed(impl: str, make: Make) -> None:
    client = await started(make(impl))
    with pytest.raises(AmiActionFailed) as caught:
        async with asyncio.timeout(patience(impl)):
            await client.send({"Action": "NoSuchThing"})
    assert caught.value.action == "NoSuchThing"
    assert caught.value.message == "Invalid/unknown command"


async def test_send_list_collects_until_complete(fake: FakeAmi, make: Make) -> None:
    async def channels(conn: FakeConn, action: dict[str, str]) -> None:
        aid = action["ActionID"]
        await conn.reply(action, {"EventList": "start", "Message": "Channels will follow"})
        await conn.frame({"Event": "CoreShowChannel", "ActionID": aid, "Channel": "Local/a;1"})
        await conn.frame({"Event": "Newexten", "Uniqueid": "9.9"})  # unrelated: to the queue
        await conn.frame({"Event": "CoreShowChannel", "ActionID": aid, "Channel": "Local/b;1"})
        done = {"Event": "CoreShowChannelsComplete", "ActionID": aid, "EventList": "Complete"}
        await conn.frame({**done, "ListItems": "2"})

    fake.on("CoreShowChannels", channels)
    client = await started(make())
    frames = await client.send_list({"Action": "CoreShowChannels"})
    assert [f.get("Event", f.get("Response")) for f in frames] == [
        "Success",
        "CoreShowChannel",
        "CoreShowChannel",
        "CoreShowChannelsComplete",
    ]
    assert events(await read_until(client, "Newexten")) == ["FullyBooted", CONNECTED, "Newexten"]


async def test_list_that_timed_out_does_not_leak_its_late_events(fake: FakeAmi, make: Make) -> None:
    late: list[dict[str, str]] = []

    async def slow_list(conn: FakeConn, action: dict[str, str]) -> None:
        late.append(action)

    fake.on("QueueStatus", slow_list)
    client = await started(make())
    with pytest.raises(AmiTimeout):
        await client.send_list({"Action": "QueueStatus"}, timeout=0.1)
    [conn] = fake.live
    aid = late[0]["ActionID"]
    await conn.reply(late[0], {"EventList": "start"})
    await conn.frame({"Event": "QueueParams", "ActionID": aid, "Queue": "support"})
    await conn.frame({"Event": "QueueStatusComplete", "ActionID": aid, "EventList": "Complete"})
    await conn.frame({"Event": "Hangup", "Uniqueid": "1.1"})
    assert events(await read_until(client, "Hangup")) == ["FullyBooted", CONNECTED, "Hangup"]


async def test_command_returns_output_lines_and_errors_carry_the_output(
    fake: FakeAmi, make: Make
) -> None:
    async def command(conn: FakeConn, action: dict[str, str]) -> None:
        if action["Command"] == "core show channels":
            lines = ["Channel  Location  State", "", "0 active channels"]
            await conn.reply(action, [("Message", "Command output follows")] + [
                ("Output", line) for line in lines
            ])  # fmt: skip
        else:
            fields = {"Response": "Error", "Message": "Command output follows"}
            await conn.reply(action, {**fields, "Output": "No such command 'bogus'"})

    fake.on("Command", command)
    client = await started(make())
    assert await client.command("core show channels") == [
        "Channel  Location  State",
        "",
        "0 active channels",
    ]
    with pytest.raises(AmiActionFailed, match="No such command 'bogus'"):
        await client.command("bogus")


async def test_actions_are_validated_before_anything_is_sent(make: Make) -> None:
    client = make()
    with pytest.raises(ValueError, match="CR or LF"):
        await client.send({"Action": "Redirect", "Channel": "x\r\nAction: Originate"})
    with pytest.raises(ValueError, match="ActionID"):
        await client.send({"Action": "Ping", "ActionID": "mine"})
    with pytest.raises(ValueError, match="'Action'"):
        await client.send({"Channel": "x"})
    with pytest.raises(AmiNotReady):
        await client.send({"Action": "Ping"})  # not started


# -- 4. nothing is ever re-sent after a reconnect -------------------------------------------


@guard(AssertionError, "re-sends unanswered actions on the next FullyBooted")
async def test_drop_mid_action_fails_it_and_it_is_never_resent(
    impl: str, fake: FakeAmi, make: Make
) -> None:
    async def originate(conn: FakeConn, action: dict[str, str]) -> None:
        if len(fake.actions("originate")) == 1:
            conn.drop()  # the PBX dies with the Originate unanswered
        else:
            await conn.reply(action, {"Message": "Originate successfully queued"})

    fake.on("Originate", originate)
    client = await started(make(impl))
    call = {"Action": "Originate", "Channel": "Local/s@caller-talking/n", "Application": "Wait"}
    sending = asyncio.create_task(client.send(call))
    await read_until(client, "FullyBooted", nth=2)  # reconnected: when panoramisk replays
    await asyncio.sleep(0.1)
    assert len(fake.actions("originate")) == 1
    with pytest.raises(AmiDisconnected, match="not re-sent"):
        await sending  # failed the moment the link dropped


@guard(TimeoutError, "a half-answered list action stays pending forever")
async def test_half_answered_list_then_drop_fails_at_once(
    impl: str, fake: FakeAmi, make: Make
) -> None:
    async def status(conn: FakeConn, action: dict[str, str]) -> None:
        await conn.reply(action, {"EventList": "start", "Message": "Channel status will follow"})
        await conn.frame({"Event": "Status", "ActionID": action["ActionID"], "Channel": "L/a;1"})
        conn.drop()

    fake.on("Status", status)
    client = await started(make(impl, action_timeout=5.0))
    async with asyncio.timeout(patience(impl)):
        with pytest.raises(AmiDisconnected):
            await client.send_list({"Action": "Status"})
    await read_until(client, CONNECTED, 2.0, nth=2)
    assert len(fake.actions("status")) == 1


async def test_close_fails_pending_actions_and_stops_for_good(fake: FakeAmi, make: Make) -> None:
    async def never(_conn: FakeConn, _action: dict[str, str]) -> None:
        return

    fake.on("Hangup", never)
    client = await started(make(action_timeout=5.0))
    pending = asyncio.create_task(client.send({"Action": "Hangup", "Channel": "Local/x;1"}))
    await fake.wait_for(lambda: bool(fake.actions("hangup")))
    await client.close()
    with pytest.raises(AmiDisconnected):
        await pending
    await client.close()  # idempotent
    assert events(await read_until(client, DISCONNECTED))[-1] == DISCONNECTED
    with pytest.raises(AmiNotReady, match="closed"):
        await client.wait_ready(0.1)
    with pytest.raises(AmiNotReady):
        await client.send({"Action": "Ping"})
    with pytest.raises(AmiNotReady, match="closed"):
        await client.start()


# -- 5. our own ping, backoff with jitter, close() really stops ------------------------------


@guard(TimeoutError, "the pinger never checks for the Pong: a dead link looks alive")
async def test_silent_ping_forces_a_reconnect(impl: str, fake: FakeAmi, make: Make) -> None:
    async def ping(conn: FakeConn, action: dict[str, str]) -> None:
        if conn.index > 0:  # the first connection's PBX is hung but keeps the socket open
            await conn.reply(action, {"Ping": "Pong"})

    fake.on("Ping", ping)
    client = await started(make(impl, ping_interval=0.1, ping_timeout=0.15))
    frames = await read_until(client, DISCONNECTED, patience(impl, 1.0))
    assert frames[-1]["Reason"] == "ping timeout"
    await read_until(client, CONNECTED, 1.0)
    assert client.stats.pings_failed == 1
    assert client.stats.reconnects == 1
    assert len(fake.conns) == 2


async def test_shutdown_event_then_reconnect(fake: FakeAmi, make: Make) -> None:
    client = await started(make())
    await fake.live[0].shutdown()
    frames = await read_until(client, CONNECTED, 2.0, nth=2)
    assert events(frames) == [
        "FullyBooted",
        CONNECTED,
        "Shutdown",
        DISCONNECTED,
        "FullyBooted",
        CONNECTED,
    ]
    assert frames[3]["Reason"] == "shutdown"


async def test_reconnect_backs_off_while_refused_and_resets_after(
    fake: FakeAmi, make: Make
) -> None:
    client = await started(make(reconnect_min=0.02, reconnect_max=0.16))
    with capture_logs() as logs:
        await fake.stop_listening()
        fake.drop_all()
        await asyncio.sleep(0.5)
        await fake.start()
        await read_until(client, CONNECTED, nth=2)
    delays = [e["delay"] for e in logs if e["event"] == "ami_reconnect_scheduled"]
    attempts = [e["attempt"] for e in logs if e["event"] == "ami_reconnect_scheduled"]
    assert len(delays) >= 4
    assert attempts == list(range(1, len(attempts) + 1))
    for attempt, delay in enumerate(delays):
        cap = min(0.16, 0.02 * 2**attempt)
        assert max(0.02, cap / 2) - 0.001 <= delay <= cap + 0.001
    assert any(e["event"] == "ami_connect_failed" for e in logs)
    assert client.stats.reconnects == len(delays)
    with capture_logs() as logs:
        fake.drop_all()
        await read_until(client, CONNECTED)
    [first] = [e for e in logs if e["event"] == "ami_reconnect_scheduled"]
    assert first["attempt"] == 1  # backoff starts over once connected


async def test_keepalive_bug_is_logged_and_the_link_restarts(
    fake: FakeAmi, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any) -> Any:
        raise RuntimeError("bug")

    client = await started(make(ping_interval=0.05))
    monkeypatch.setattr(ami, "_exchange", broken)  # only the keepalive's Ping uses it now
    with capture_logs() as logs:
        frames = await read_until(client, DISCONNECTED)
    assert frames[-1]["Reason"] == "internal error: RuntimeError"
    assert any(e["event"] == "ami_session_failed" and e["log_level"] == "error" for e in logs)
    monkeypatch.undo()
    await read_until(client, CONNECTED)


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_backoff_delay_doubles_with_jitter_within_bounds(rand: float) -> None:
    delays = [backoff_delay(n, 0.5, 30.0, lambda: rand) for n in range(12)]
    assert all(0.5 <= d <= 30.0 for d in delays)
    caps = [min(30.0, 0.5 * 2**n) for n in range(12)]
    assert delays == [max(0.5, c / 2 + rand * c / 2) for c in caps]
    assert backoff_delay(10_000, 0.5, 30.0) <= 30.0


@guard(AssertionError, "close() does not cancel a reconnect it already scheduled")
async def test_close_cancels_a_scheduled_reconnect(impl: str, fake: FakeAmi, make: Make) -> None:
    # panoramisk's reconnect delay is an int() of seconds (0.3 would mean "at once"): give it 1 s.
    delay = 0.3 if impl == "ours" else 1.0
    client = await started(make(impl, reconnect_min=delay, reconnect_max=delay))
    fake.drop_all()
    await asyncio.sleep(0.1)  # the link is gone; the reconnect is scheduled
    await client.close()
    await asyncio.sleep(delay + 0.15)
    assert len(fake.conns) == 1


async def test_connect_fired_after_close_reaches_no_server(fake: FakeAmi, make: Make) -> None:
    client = await started(make())
    # A reconnect timer armed elsewhere (panoramisk's own call_later) fires after close().
    asyncio.get_running_loop().call_later(0.05, client._manager.connect)
    await client.close()
    await asyncio.sleep(0.2)
    assert len(fake.conns) == 1


# -- 6. UTF-8 split across TCP reads ----------------------------------------------------------


@guard(AssertionError, "each read is decoded alone with errors='ignore'")
async def test_chinese_name_split_at_every_byte_arrives_intact(
    impl: str, fake: FakeAmi, make: Make
) -> None:
    client = await started(make(impl))
    await read_until(client, "FullyBooted")
    frame = encode({"Event": "Newchannel", "CallerIDName": "张三丰", "Uniqueid": "1.1"})
    [conn] = fake.live
    start = frame.index("张".encode())
    for cut in range(start, start + 10):  # every boundary in and around the 9 bytes of 张三丰
        await conn.send(frame, split=[cut])
    await conn.send(frame, split=range(1, len(frame)))  # and one byte per write
    names: list[str] = []
    async with asyncio.timeout(patience(impl)):
        while len(names) < 11:
            got = await client.next_frame()
            if got.get("Event") == "Newchannel":
                names.append(got["CallerIDName"])
    assert names == ["张三丰"] * 11


# -- 7. malformed frames are logged and skipped ----------------------------------------------


@guard(AssertionError, "skips or delivers junk silently")
async def test_malformed_frames_are_logged_skipped_and_the_reader_survives(
    impl: str, fake: FakeAmi, make: Make
) -> None:
    client = await started(make(impl))
    junk = [
        b"\x00\xff\xfe\x01 binary junk\r\n\r\n",
        b"NoColonHere\r\n\r\n",
        b"Foo: bar\r\nBaz: qux\r\n\r\n",
        b"Event: Huge\r\nData: " + b"x" * 70_000 + b"\r\n\r\n",
    ]
    with capture_logs() as logs:
        for data in junk:
            await fake.broadcast(data)
        await fake.event({"Event": "Hangup", "Uniqueid": "1.1", "Cause": "16"})
        frames = await read_until(client, "Hangup")
    assert events(frames) == ["FullyBooted", CONNECTED, "Hangup"]
    malformed = [e for e in logs if e["event"] == "ami_frame_malformed"]
    assert malformed
    assert malformed[0]["reason"] == "line without colon"
    assert client.stats.malformed == 4
    assert client.ready


# -- 8. frames are plain dicts ----------------------------------------------------------------


@guard(AssertionError, "Message.__getattr__ returns '' for any typo")
async def test_frames_are_plain_dicts_and_typos_raise(impl: str, fake: FakeAmi, make: Make) -> None:
    client = await started(make(impl))
    await fake.event(
        [
            ("Event", "Newstate"),
            ("Uniqueid", "1795633717.12"),
            ("ChanVariable", "CALL_ID=1795633717.12"),
            ("ChanVariable", "CALLER_KIND=silent"),
        ]
    )
    frame = (await read_until(client, "Newstate"))[-1]
    assert type(frame) is dict
    with pytest.raises(KeyError):
        frame["Uniquid"]
    with pytest.raises(AttributeError):
        frame.uniquid  # type: ignore[attr-defined]  # noqa: B018
    assert frame["ChanVariable.CALLER_KIND"] == "silent"


async def test_ping_answered_late_behind_a_flood_keeps_the_link(fake: FakeAmi, make: Make) -> None:
    """An overloaded Asterisk answers Ping behind its event backlog: while events still flow,
    a late Pong is no reason to drop a live link (that would lose the events in the gap)."""

    async def never(_conn: FakeConn, _action: dict[str, str]) -> None:
        return

    fake.on("Ping", never)
    client = await started(make("ours", ping_interval=0.1, ping_timeout=0.15))
    with capture_logs() as logs:
        for i in range(30):  # 0.9 s of steady events, six ping timeouts' worth
            await fake.event({"Event": "UserEvent", "UserEvent": f"tick{i}"})
            await asyncio.sleep(0.03)
        assert client.ready
        assert client.stats.pings_failed == 0
        assert any(e["event"] == "ami_ping_late" for e in logs)
        # Then the PBX goes quiet as well: now the unanswered Ping does drop the link.
        frames = await read_until(client, DISCONNECTED, 1.0)
    assert frames[-1]["Reason"] == "ping timeout"
    assert client.stats.pings_failed == 1
