"""The blacklist treatment in the real lab: with `leader`, an approved blacklisted caller is
answered by the shift leader (agent4, Queue(leaders)); other callers, and the same caller once
the entry is removed, queue for the agents as usual."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ivr_agent.config import Settings
from ivr_agent.lab.pbx import LabInfo
from ivr_agent.lab.simulator import LocalCall, place_local_calls
from ivr_agent.store import blacklist
from ivr_agent.store.txn import Db
from tests.integration.service import db_rows, lab_settings, running_service, wait_until

pytestmark = pytest.mark.integration

BLACKLISTED = "13560000001"
OTHER = "13560000002"


def settings(lab: LabInfo, db: Path) -> Settings:
    s = lab_settings(lab, db)
    hotline = dataclasses.replace(
        s.hotline, blacklist_treatment="leader", blacklist_sync_interval=0.2
    )
    return dataclasses.replace(s, hotline=hotline)


def ended(db: Path, number: str) -> list[dict[str, object]]:
    return db_rows(db, "caller_number = ? AND ended_at IS NOT NULL ORDER BY started_at", (number,))


async def test_blacklisted_caller_goes_to_the_shift_leader(lab: LabInfo, tmp_path: Path) -> None:
    db_path = tmp_path / "calls.db"
    async with running_service(settings(lab, db_path)) as service:
        db = await Db.open(db_path)  # a second connection, as the web UI or CLI would have
        try:
            bid = await blacklist.propose(
                db, BLACKLISTED, "多次辱骂坐席", by="agent1", role="agent", at=1.0
            )
            await blacklist.decide(
                db, bid, "approved", "证据确凿", by="组长", role="supervisor", at=2.0
            )
            routing = service.blacklist_routing
            await wait_until(lambda: bool(routing.routed), 5, "the blacklist global set")
            await place_local_calls(
                service.ami, LocalCall("talking", BLACKLISTED, "恶意投诉", hold_s=1)
            )
            await place_local_calls(service.ami, LocalCall("talking", OTHER, "普通来电", hold_s=1))
            await wait_until(
                lambda: len(ended(db_path, BLACKLISTED)) == 1 and len(ended(db_path, OTHER)) == 1,
                40,
                "both calls ended",
            )
            (bad,) = ended(db_path, BLACKLISTED)
            (good,) = ended(db_path, OTHER)
            assert (bad["queue"], bad["agent"], bad["disposition"]) == (
                "leaders",
                "agent4",
                "blacklisted",
            )
            assert bad["answered_at"] is not None  # the leader took it
            assert good["queue"] == "support"
            assert good["disposition"] == "answered"

            # Removed from the blacklist: the next call queues for the agents again.
            await blacklist.decide(
                db, bid, "removed", "已和解", by="组长", role="supervisor", at=3.0
            )
            await wait_until(lambda: not routing.routed, 5, "the blacklist global cleared")
            await place_local_calls(
                service.ami, LocalCall("talking", BLACKLISTED, "恶意投诉", hold_s=1)
            )
            await wait_until(lambda: len(ended(db_path, BLACKLISTED)) == 2, 40, "second call")
            again = ended(db_path, BLACKLISTED)[1]
            assert (again["queue"], again["disposition"]) == ("support", "answered")
        finally:
            await db.close()
