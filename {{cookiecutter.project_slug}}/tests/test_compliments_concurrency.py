"""Hundreds of compliments at once never overdraw a wallet nor break the ledger."""

import asyncio
import time
from collections import Counter
from uuid import UUID

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from {{ cookiecutter.package_name }}.features.wallets.service import reset_weekly_balances
from {{ cookiecutter.package_name }}.lib.config import Settings

from . import factories as f
from .factories import Db
from .tokens import Bearer

SENDER = "sender@acme.example"
ALLOWANCE = 100
COINS = 5
REQUESTS = 200  # from SENDER, of whose coins only ALLOWANCE // COINS can succeed
RECEIVERS = 4
COUNTER_REQUESTS = 10  # from each receiver to SENDER at the same time, all covered


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A lock wait long enough for 240 requests queued on one wallet, on a loaded machine.

    This test is about exact debits under contention; the api's short lock_timeout (a
    503 rather than a held connection) is tested in test_database_limits.py.
    """
    return settings.model_copy(update={"database_lock_timeout_seconds": 60.0})


async def test_concurrent_compliments_succeed_exactly_as_far_as_the_allowance_goes(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, session: AsyncSession
) -> None:
    acme = f.company(db, "Acme", allowance=ALLOWANCE)
    sender = f.member(db, acme, SENDER)
    receivers = {
        f"r{i}@acme.example": f.member(db, acme, f"r{i}@acme.example") for i in range(RECEIVERS)
    }
    # The real weekly reset gives everyone their allowance (and its ledger rows).
    await reset_weekly_balances(session, company_id=acme)
    assert f.balances(db, sender) == (ALLOWANCE, 0)

    def compliment(receiver_id: UUID, n: int) -> dict[str, str | int]:
        return {"receiver_id": str(receiver_id), "coins": COINS, "message": f"Thanks, #{n:04}!"}

    # Tokens signed up front: the run measures the api, not the test's RSA signing.
    headers = {email: bearer(email) for email in [SENDER, *receivers]}
    receiver_ids = list(receivers.values())
    outgoing = [(SENDER, compliment(receiver_ids[n % RECEIVERS], n)) for n in range(REQUESTS)]
    # Compliments the other way at the same time: both lock orders of each pair of wallets.
    incoming = [
        (email, compliment(sender, n)) for email in receivers for n in range(COUNTER_REQUESTS)
    ]
    requests = [x for pair in zip(outgoing, incoming, strict=False) for x in pair]
    requests += outgoing[len(incoming) :]

    started = time.perf_counter()
    responses = await asyncio.gather(
        *(api.post("/compliments", json=body, headers=headers[who]) for who, body in requests)
    )
    elapsed = time.perf_counter() - started

    outcome = Counter(
        (who == SENDER, response.status_code, response.json().get("error", {}).get("code"))
        for (who, _), response in zip(requests, responses, strict=True)
    )
    successes = ALLOWANCE // COINS
    assert outcome == {
        (True, 201, None): successes,
        (True, 409, "insufficient_balance"): REQUESTS - successes,
        (False, 201, None): RECEIVERS * COUNTER_REQUESTS,
    }, outcome
    created = sum(count for (_, status, _), count in outcome.items() if status == 201)
    print(
        f"\n{len(requests)} concurrent POST /compliments in {elapsed:.2f}s"
        f" ({len(requests) / elapsed:.0f} req/s): {created} created,"
        f" {REQUESTS - successes} refused for insufficient balance"
    )

    received_back = RECEIVERS * COUNTER_REQUESTS * COINS
    assert f.balances(db, sender) == (0, received_back)
    # Never negative on the way: every COMPLIMENT row of the sender, in order.
    steps = [row[2:5] for row in f.ledger(db, sender) if row[1] == "COMPLIMENT"]
    assert steps[0] == (ALLOWANCE, 0, ALLOWANCE)
    assert steps[1:] == [
        (-COINS, ALLOWANCE - COINS * i, ALLOWANCE - COINS * (i + 1)) for i in range(successes)
    ]
    for email, receiver_id in receivers.items():
        compliment_balance, _ = f.balances(db, receiver_id) or (None, None)
        assert compliment_balance == ALLOWANCE - COUNTER_REQUESTS * COINS, email
    redeemed = sum((f.balances(db, r) or (0, 0))[1] for r in receiver_ids)
    assert redeemed == successes * COINS
    assert db.execute("SELECT count(*) FROM compliments").fetchone() == (
        successes + RECEIVERS * COUNTER_REQUESTS,
    )
    assert f.ledger_problems(db) == []
