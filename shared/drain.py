"""The drain: after its own delivery, a request goes on claiming its agent's
due deliveries (the same project's, for a per-project agent) and runs them,
so the doorbell is a wake-up and not the unit of work.

It stops when nothing is due (and nothing came during a short linger; a
drain working a steady stream lingers to the end of its budget), when a run
fails (its retry is rung when due), or when the time budget is spent (then
it hands on with one fresh ring). Claims are atomic in SQL (skip locked), so
concurrent drains never run one delivery twice.

While it drains, the request is registered as a drainer, and the ledger does
not ring the new deliveries it will take. Withdrawing is exact: end_drain()
waits for the fan-outs that skipped a ring because of it, and one more claim
afterwards picks up what they inserted (see 20261202000001_ring_coalescing.sql).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID, uuid4

from shared.errors import SignalsLoopError
from shared.store import Claim, Store

log = logging.getLogger("signalsloop.drain")

POLL_SECONDS = (0.05, 0.2)  # a lingering drain's pause between polls: first, and at most (doubling)
#: A drain that has run this many deliveries is working a steady stream: it
#: stays until its budget ends instead of leaving after ``linger_ms`` idle.
#: Under pg_net a drainer that leaves early uncovers its agent until the next
#: batch (the rest of this one, then about 1 s); a quiet agent's request
#: (fewer runs) still ends ``linger_ms`` after its start or its last claim, so
#: an idle system pays for three or four polls per ring, no more.
BUSY_RUNS = 5
#: A drain waiting for work asks this often whether it should stay (drain_hold).
CHECK_SECONDS = 0.5
HOLD_MARGIN_MS = 5000  # a drainer that dies without ending counts this long past its budget
Stop = Literal["idle", "out_of_time", "failed"]


@dataclass
class Drain:
    store: Store
    agent: str
    worker: str
    process: Callable[[Claim], bool]  # runs one claimed delivery; False when it failed
    linger_ms: int = 300
    busy_runs: int = BUSY_RUNS

    def run(self, first: Claim, started: float) -> int:
        """How many deliveries ran after ``first``, within the budget counted from ``started``."""
        project = first.project_id if first.serialize_by_project else None
        budget_ms = first.drain_budget_ms
        if budget_ms <= 0 or (first.serialize_by_project and project is None):
            return 0  # draining is off (drain_budget_ms = 0), or nothing to drain
        hold_ms = budget_ms + max(0, self.linger_ms) + HOLD_MARGIN_MS
        deadline, ran, drainer, registered = started + budget_ms / 1000, 0, uuid4(), False
        while True:
            count, why, held = self._drain_as(drainer, project, deadline, hold_ms)
            ran, registered = ran + count, registered or count > 0 or held
            try:
                self.store.end_drain(drainer, self.agent, project, ring_next=why == "out_of_time")
                if why != "idle" or not registered:
                    return ran  # a drainer that never claimed was never registered: nothing skipped
                drainer, registered = uuid4(), False  # withdrawn: one more look, as a new drainer
                last = self.store.claim_next(self.agent, self.worker, project, drainer=drainer, hold_ms=hold_ms)
            except SignalsLoopError as exc:  # a row left expires by itself; the sweep rings the rest
                log.warning("%s could not end its drain: %s", self.agent, exc.message)
                return ran
            if last is None:
                return ran
            if last.claimed:
                ran, registered = ran + 1, True
                if not self.process(last):
                    with contextlib.suppress(SignalsLoopError):
                        self.store.end_drain(drainer, self.agent, project, ring_next=False)
                    return ran

    def _drain_as(self, drainer: UUID, project: UUID | None, deadline: float,
                  hold_ms: int) -> tuple[int, Stop, bool]:
        """One drainer's loop: how many it ran, why it stopped, and whether
        drain_hold registered it. It lingers from the start, as after a claim:
        an agent downstream of another (theme after sentiment) is often rung in
        the same pg_net batch as the agent whose output it waits for, and would
        otherwise leave just before its work arrives, its next ring queued
        behind the whole batch. After the linger it stays while another drainer
        holds the batch open (see 20261202000711_batch_linger.sql)."""
        ran, linger, empty = 0, max(0, self.linger_ms) / 1000, 0
        last_claim, held_until, held = time.perf_counter(), 0.0, False
        try:
            while (now := time.perf_counter()) < deadline:
                claim = self.store.claim_next(self.agent, self.worker, project, drainer=drainer, hold_ms=hold_ms)
                if claim is None:
                    staying = ran >= self.busy_runs
                    if (staying or now - last_claim >= linger) and now >= held_until:
                        ms = self.store.drain_hold(drainer, self.agent, project, hold_ms=hold_ms,
                                                   stays_ms=int((deadline - now) * 1000) if staying else 0)
                        if staying and ms == 0:
                            return ran, "out_of_time", held  # another agent starves: end the batch, ring on
                        held = held or (ms > 0 and not staying)
                        held_until = min(deadline, now + min(ms / 1000, CHECK_SECONDS))
                    stay = max(linger - (now - last_claim), held_until - now)
                    if stay <= 0:
                        return ran, "idle", held
                    time.sleep(min(POLL_SECONDS[0] * 2 ** empty, POLL_SECONDS[1], stay))
                    empty += 1
                    continue
                last_claim, empty = time.perf_counter(), 0
                if claim.claimed:
                    ran += 1
                    if not self.process(claim):
                        return ran, "failed", held  # failing: back off; its retry is rung when due
        except SignalsLoopError as exc:  # the sweep rings what is left
            log.warning("%s stopped draining: %s", self.agent, exc.message)
            return ran, "failed", held
        return ran, "out_of_time", held
