"""Record one real lab call's AMI frames into `tests/transcripts/real_<scenario>.ami`.

How the `real_*.ami` transcripts were made: the lab Asterisk 22 up (`ivr-agent lab up`, as root),
then, from the repository root, one run per scenario:

    .venv/bin/python -m tests.transcripts.record SCENARIO [--lab var/lab] [--out FILE]

The recorder logs in with the project's own adapter (`ivr_agent.ami.AmiClient`, the service's
AMI user `ivr-agent`, credentials from `var/lab/ivr-agent.toml` + `ami.secret`), reads every
frame from before the call is placed until all channels of the call hung up (plus a short grace
for the Cdr records), and keeps only the frames of that call, in arrival order:

* any `*Linkedid` header (Linkedid, DestLinkedid, LocalOneLinkedid, ...) equal to the call's
  Linkedid;
* any `Uniqueid`/`UniqueID`/`DestUniqueid` naming one of the call's channels (the Cdr records,
  which carry no Linkedid);
* the OriginateResponse of our own Originate (its ActionID);
* BridgeCreate/BridgeDestroy of a bridge one of the call's channels entered.

Other engineers use the same lab: their calls (and our own "blocker" calls that keep the agents
busy) are in the stream but not in the file. Nothing else is removed: the `ivr-agent` AMI user
does not read the dialplan/reporting classes, so there are no VarSet, Newexten or TestEvent
frames to drop. Headers are written back in the adapter's normal form: `ChanVariable.NAME` keys
become `ChanVariable: NAME=value` lines, which `tests/unit/transcript.py` reads back (checked
before writing). A run during which the AMI link dropped (someone restarted the shared lab) writes
nothing and says so: run it again.

Scenarios (caller numbers are unique per scenario so that the call can be told apart from the
other engineers' calls; the Linkedid also comes from our OriginateResponse where it has one):

    talking_local       `lab call --via local --scenario talking --hold 6`: answered by an agent,
                        the caller hangs up first (9.2 s of speech, then 6 s)
    silent_local        `lab call --via local --scenario silent --hold 6`: answered, no voice
    sip_zhangsanfeng    `lab call --via sip --scenario talking --caller-id '张三丰 <...>'`
                        (SIPp over the lab's PJSIP trunk, default hold 10 s)
    abandoned_queue     4 blocker calls (talking, hold 40) make the 4 agents busy, then a talking
                        call with --hold 3 hangs up while queued; the blockers are hung up after
    silent_line_bridged silent call (hold 40); after its AgentConnect, AMI Redirect of the
                        caller `;1` channel to ivr-agent-silent-line,s,1 (10.5 s prompt)
    silent_line_queued  blockers as above; silent call (hold 40) Redirected 1 s after its
                        QueueCallerJoin
    agent_hangup        talking call (hold 30); 3 s after its AgentConnect, AMI Hangup of the
                        agent's `;2` half (Local/agentN@lab-agents-...;2): the agent hangs up first
    originate_failed    Originate Channel=Local/s@no-such-context/n: OriginateResponse Failure
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr_agent.ami import AmiClient
from ivr_agent.config import load_settings, require_ami_secret
from ivr_agent.lab import simulator, sipp
from tests.unit.transcript import TRANSCRIPTS, frames

Frame = Mapping[str, str]
_VAR_PREFIXES = ("ChanVariable.", "DestChanVariable.")
_GRACE_S = 3.0  # Cdr records arrive right after the last Hangup
_BAD_IDS = frozenset({"", "<null>", "<unknown>"})


@dataclass
class Recording:
    linkedid: str = ""
    action_ids: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


class Recorder:
    """Every frame read since start(), plus waits on them."""

    def __init__(self, client: AmiClient) -> None:
        self.client = client
        self.frames: list[dict[str, str]] = []
        self.disconnects = 0  # AMI link drops while recording: frames may be lost
        self._new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        while True:
            frame = await self.client.next_frame()
            if frame.get("Event") == "IvrAgentDisconnected":
                self.disconnects += 1
            elif "Event" in frame and not frame["Event"].startswith("IvrAgent"):
                self.frames.append(dict(frame))
                self._new.set()

    async def wait_for(
        self, pred: Callable[[Frame], bool], timeout: float, start: int = 0
    ) -> dict[str, str]:
        """The first frame from index `start` on that matches `pred`, waiting up to `timeout`."""
        pos = start
        async with asyncio.timeout(timeout):
            while True:
                while pos < len(self.frames):
                    frame = self.frames[pos]
                    pos += 1
                    if pred(frame):
                        return frame
                self._new.clear()
                await self._new.wait()

    async def originate(self, action: Mapping[str, str], rec: Recording | None = None) -> str:
        resp = await self.client.send(action, timeout=5)
        aid = resp["ActionID"]
        if rec is not None:
            rec.action_ids.add(aid)
        return aid

    async def originate_response(self, aid: str, timeout: float = 20) -> dict[str, str]:
        return await self.wait_for(
            lambda f: f.get("Event") == "OriginateResponse" and f.get("ActionID") == aid, timeout
        )

    async def caller_leg(self, number: str, since: float, timeout: float = 30) -> str:
        """The Linkedid of the call whose caller leg carries caller ID `number`."""
        frame = await self.wait_for(
            lambda f: (
                f.get("Uniqueid", "") == f.get("Linkedid")
                and f.get("CallerIDNum") == number
                and float(f.get("Timestamp", "0")) >= since
            ),
            timeout,
        )
        return frame["Linkedid"]

    async def wait_call_end(self, linkedid: str, timeout: float = 150) -> None:
        """Until every channel of `linkedid` hung up, then a grace for the Cdr records."""
        live: set[str] = set()
        seen = False
        pos = 0
        async with asyncio.timeout(timeout):
            while True:
                while pos < len(self.frames):
                    f = self.frames[pos]
                    pos += 1
                    if f.get("Linkedid") != linkedid:
                        continue
                    if f.get("Event") == "Hangup":
                        live.discard(f["Uniqueid"])
                    elif f.get("Event") == "Newchannel":
                        live.add(f["Uniqueid"])
                        seen = True
                if seen and not live:
                    break
                self._new.clear()
                await self._new.wait()
        await asyncio.sleep(_GRACE_S)


# ---------------------------------------------------------------------------- selection


def select(all_frames: Iterable[Frame], rec: Recording) -> list[Frame]:
    """The frames of the call `rec.linkedid` (see the module docstring), in arrival order."""
    frames_ = list(all_frames)
    lid = rec.linkedid
    uids: set[str] = set()
    for f in frames_:
        for key, value in f.items():
            if key.endswith("Linkedid") and value == lid:
                uid = f.get(key.removesuffix("Linkedid") + "Uniqueid")
                if uid:
                    uids.add(uid)
    bridges = {
        f["BridgeUniqueid"]
        for f in frames_
        if f.get("Event") == "BridgeEnter" and f.get("Uniqueid") in uids
    }
    out: list[Frame] = []
    for f in frames_:
        if (
            any(k.endswith("Linkedid") and v == lid for k, v in f.items())
            or any(k.lower().endswith("uniqueid") and v in uids for k, v in f.items())
            or f.get("ActionID") in rec.action_ids
            or (f.get("Event", "").startswith("Bridge") and f.get("BridgeUniqueid") in bridges)
        ):
            out.append(f)
    return out


def to_text(frame: Frame) -> str:
    lines: list[str] = []
    for key, value in frame.items():
        name = key
        prefix = ""
        for base in _VAR_PREFIXES:
            if key.startswith(base):
                name, prefix = base[:-1], key[len(base) :] + "="
                break
        for part in value.split("\n"):
            lines.append(f"{name}: {prefix}{part}")
    return "\n".join(lines) + "\n"


def write(path: Path, header: list[str], selected: list[Frame]) -> None:
    body = "\n".join(to_text(f) for f in selected)
    text = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header) + "\n" + body
    if frames(text) != [dict(f) for f in selected]:
        raise RuntimeError("the transcript does not read back as the recorded frames")
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------- scenarios


def local(scenario: str, number: str, name: str, hold: float) -> dict[str, str]:
    return simulator.LocalCall(scenario, number, name, "95000", hold).originate()


async def local_call(r: Recorder, rec: Recording, action: Mapping[str, str]) -> dict[str, str]:
    """Place a Local call; the Linkedid is the Uniqueid of the caller leg `;1`."""
    aid = await r.originate(action, rec)
    resp = await r.originate_response(aid)
    uid = resp.get("Uniqueid", "")
    if resp["Response"] != "Success" or uid in _BAD_IDS:
        raise RuntimeError(f"Originate failed: {resp}")
    rec.linkedid = uid
    return resp


async def busy_agents(r: Recorder, count: int = 4) -> list[str]:
    """Blocker calls (not recorded) until every member of `support` is in a call."""
    channels: list[str] = []
    for i in range(count):
        aid = await r.originate(local("talking", f"1391234099{i}", "占线", 40))
        resp = await r.originate_response(aid)
        channels.append(resp.get("Channel", ""))
    async with asyncio.timeout(30):
        while True:
            reply = await r.client.send_list(
                {"Action": "QueueStatus", "Queue": "support"}, timeout=5
            )
            members = [f for f in reply if f.get("Event") == "QueueMember"]
            if members and all(m.get("InCall") == "1" for m in members):
                return channels
            await asyncio.sleep(0.5)


async def hang_up(r: Recorder, channels: Iterable[str]) -> None:
    for channel in channels:
        if channel:
            try:
                await r.client.send({"Action": "Hangup", "Channel": channel}, timeout=5)
            except Exception as err:  # noqa: BLE001  # a blocker that already ended
                print(f"hangup {channel}: {err}")


async def talking_local(r: Recorder, rec: Recording, _lab: Path) -> None:
    await local_call(r, rec, local("talking", "13912340001", "张三", 6))
    rec.notes.append("Local talking caller 张三 <13912340001>, CALLER_WAIT=6 (after 9.2 s speech).")


async def silent_local(r: Recorder, rec: Recording, _lab: Path) -> None:
    await local_call(r, rec, local("silent", "13912340002", "李四", 6))
    rec.notes.append("Local silent caller 李四 <13912340002>, CALLER_WAIT=6 (no voice frames).")


async def sip_zhangsanfeng(r: Recorder, rec: Recording, lab: Path) -> None:
    number = "13912340003"
    since = time.time() - 1
    task = asyncio.create_task(
        sipp.place_sip_calls(lab, "talking", caller_number=number, caller_name="张三丰")
    )
    rec.linkedid = await r.caller_leg(number, since)
    result = await task
    rec.notes.append(
        f"SIPp talking caller 张三丰 <{number}> -> 95000 over the PJSIP trunk, hold 10 s; "
        f"sipp ok={result.ok}."
    )


async def abandoned_queue(r: Recorder, rec: Recording, _lab: Path) -> None:
    blockers = await busy_agents(r)
    try:
        await local_call(r, rec, local("talking", "13912340004", "王五", 3))
        await r.wait_call_end(rec.linkedid)
    finally:
        await hang_up(r, blockers)
    rec.notes.append(
        "4 blocker calls (not recorded) held all agents; Local talking caller 王五 "
        "<13912340004>, CALLER_WAIT=3: hangs up while queued, ~12 s after answer."
    )


async def _silent_line(r: Recorder, rec: Recording, after: str) -> None:
    resp = await local_call(r, rec, local("silent", "13912340005", "赵六", 40))
    lid = rec.linkedid
    await r.wait_for(lambda f: f.get("Event") == after and f.get("Uniqueid") == lid, 60)
    if after == "QueueCallerJoin":
        await asyncio.sleep(1.0)
    await r.client.send(
        {
            "Action": "Redirect",
            "Channel": resp["Channel"],
            "Context": "ivr-agent-silent-line",
            "Exten": "s",
            "Priority": "1",
        },
        timeout=5,
    )
    rec.notes.append(
        f"Local silent caller 赵六 <13912340005>, CALLER_WAIT=40; after its {after} the "
        f"recorder sent AMI Redirect Channel={resp['Channel']} "
        "Context=ivr-agent-silent-line Exten=s Priority=1 (10.5 s prompt, then Hangup)."
    )


async def silent_line_bridged(r: Recorder, rec: Recording, _lab: Path) -> None:
    await _silent_line(r, rec, "AgentConnect")


async def silent_line_queued(r: Recorder, rec: Recording, _lab: Path) -> None:
    blockers = await busy_agents(r)
    try:
        await _silent_line(r, rec, "QueueCallerJoin")
        await r.wait_call_end(rec.linkedid)
    finally:
        await hang_up(r, blockers)
    rec.notes.append("4 blocker calls (not recorded) held all agents.")


async def agent_hangup(r: Recorder, rec: Recording, _lab: Path) -> None:
    await local_call(r, rec, local("talking", "13912340008", "周八", 30))
    lid = rec.linkedid
    connect = await r.wait_for(
        lambda f: f.get("Event") == "AgentConnect" and f.get("Uniqueid") == lid, 60
    )
    await asyncio.sleep(3.0)
    phone = connect["DestChannel"].removesuffix(";1") + ";2"  # the agent's "phone" half
    await r.client.send({"Action": "Hangup", "Channel": phone}, timeout=5)
    rec.notes.append(
        "Local talking caller 周八 <13912340008>, CALLER_WAIT=30; 3 s after its AgentConnect "
        f"the recorder sent AMI Hangup Channel={phone} (the agent hangs up first)."
    )


async def originate_failed(r: Recorder, rec: Recording, _lab: Path) -> None:
    number = "13912340007"
    since = time.time() - 1
    action = local("talking", number, "孙七", 6) | {"Channel": "Local/s@no-such-context/n"}
    aid = await r.originate(action, rec)
    resp = await r.originate_response(aid)
    rec.linkedid = await r.caller_leg(number, since)
    rec.notes.append(
        f"Originate Channel=Local/s@no-such-context/n Context=ivr-agent-hotline Exten=95000 "
        f"CallerID 孙七 <{number}>: OriginateResponse {resp['Response']}, Uniqueid "
        f"{resp.get('Uniqueid')!r}; the caller leg was found by its caller number."
    )


SCENARIOS: dict[str, Callable[[Recorder, Recording, Path], Awaitable[None]]] = {
    "talking_local": talking_local,
    "silent_local": silent_local,
    "sip_zhangsanfeng": sip_zhangsanfeng,
    "abandoned_queue": abandoned_queue,
    "silent_line_bridged": silent_line_bridged,
    "silent_line_queued": silent_line_queued,
    "agent_hangup": agent_hangup,
    "originate_failed": originate_failed,
}


async def record(scenario: str, lab: Path, out: Path) -> None:
    settings = load_settings(lab / "ivr-agent.toml")
    client = AmiClient(settings.ami, require_ami_secret(settings), queue_size=200_000)
    await client.start()
    r = Recorder(client)
    rec = Recording()
    try:
        await client.wait_ready(10)
        r.start()
        core = await client.send({"Action": "CoreSettings"}, timeout=5)
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        await SCENARIOS[scenario](r, rec, lab)
        await r.wait_call_end(rec.linkedid)
    finally:
        await r.stop()
        await client.close()
    if r.disconnects:
        raise SystemExit(f"the AMI link dropped {r.disconnects}x while recording: run it again")
    selected = select(r.frames, rec)
    header = [
        f"REAL traffic, recorded by tests/transcripts/record.py scenario {scenario!r}",
        f"on {started} from the lab Asterisk {core.get('AsteriskVersion', '?')} "
        f"(AMI {core.get('AMIversion', '?')}), AMI user ivr-agent.",
        *rec.notes,
        f"Linkedid {rec.linkedid}: {len(selected)} of the {len(r.frames)} frames read "
        "(the rest: other calls in the shared lab).",
        "Only this call's frames, in arrival order, otherwise unedited (see record.py).",
    ]
    write(out, header, selected)
    names: dict[str, int] = {}
    for f in selected:
        names[f["Event"]] = names.get(f["Event"], 0) + 1
    print(f"{out}: {len(selected)} frames, Linkedid {rec.linkedid}: {names}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--lab", type=Path, default=Path("var/lab"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or TRANSCRIPTS / f"real_{args.scenario}.ami"
    asyncio.run(record(args.scenario, args.lab, out))


if __name__ == "__main__":
    main()
