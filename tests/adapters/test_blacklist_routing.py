"""The blacklist routing feature against a recording AMI sender and a real SQLite database."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from ivr_agent.blacklist_routing import BlacklistRouting
from ivr_agent.domain.blacklist_routing import Treatment
from ivr_agent.errors import AmiDisconnected
from ivr_agent.store import blacklist
from ivr_agent.store.txn import Db


class Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail = False

    async def send(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> dict[str, str]:
        assert timeout is not None  # every wait has a timeout
        if self.fail:
            raise AmiDisconnected("link down")
        assert action["Action"] == "Setvar"
        assert "Channel" not in action  # a global, not a channel variable
        self.sent.append((action["Variable"], action["Value"]))
        return {"Response": "Success"}


async def approve(db: Db, number: str) -> int:
    bid = await blacklist.propose(db, number, "辱骂坐席", by="agent1", role="agent", at=1.0)
    await blacklist.decide(db, bid, "approved", "", by="组长", role="supervisor", at=2.0)
    return bid


@pytest.fixture
async def db(tmp_path: Path) -> Db:
    return await Db.open(tmp_path / "calls.db")


async def test_decisions_reach_the_pbx_once_and_again_after_a_resync(db: Db) -> None:
    ami = Sender()
    feature = BlacklistRouting(ami, db, treatment=Treatment.LEADER)
    bid = await approve(db, "13800000001")
    await blacklist.propose(db, "13800000002", "pending only", by="a", role="agent", at=3.0)
    assert await feature.sync(db) == 2
    assert ami.sent == [("IVR_AGENT_BL_13800000001", "leader"), ("IVR_AGENT_BL_13800000002", "")]
    assert await feature.sync(db) == 0  # nothing changed: nothing sent
    assert feature.routed == {"IVR_AGENT_BL_13800000001"}
    feature.on_resync()  # Asterisk may have restarted: every global again
    assert await feature.sync(db) == 2
    await blacklist.decide(db, bid, "removed", "误报", by="组长", role="supervisor", at=4.0)
    ami.sent.clear()
    assert await feature.sync(db) == 1
    assert ami.sent == [("IVR_AGENT_BL_13800000001", "")]
    assert feature.routed == frozenset()
    await db.close()


async def test_flag_treatment_never_routes(db: Db) -> None:
    ami = Sender()
    feature = BlacklistRouting(ami, db, treatment=Treatment.FLAG)
    await approve(db, "13800000001")
    await feature.sync(db)
    assert ami.sent == [("IVR_AGENT_BL_13800000001", "")]
    assert feature.routed == frozenset()
    await db.close()


async def test_a_failed_setvar_is_sent_again_next_round(db: Db) -> None:
    ami = Sender()
    feature = BlacklistRouting(ami, db, treatment=Treatment.LEADER)
    await approve(db, "13800000001")
    ami.fail = True
    with pytest.raises(AmiDisconnected):
        await feature.sync(db)
    assert feature.routed == frozenset()
    ami.fail = False
    assert await feature.sync(db) == 1
    assert feature.routed == {"IVR_AGENT_BL_13800000001"}
    await db.close()
