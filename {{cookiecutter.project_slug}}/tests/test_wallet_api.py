"""The signed-in user's wallet: balances, and the ledger with its filters and pages."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from . import factories as f
from .factories import Db
from .tokens import Bearer

ANA = "ana@acme.example"
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def ledger_row(
    db: Db,
    user_id: UUID,
    *,
    kind: str,
    balance_type: str,
    amount: int,
    at: datetime,
    previous: int = 0,
) -> int:
    """A ledger row written at `at` (the wallet's balances are not touched)."""
    row = db.execute(
        "INSERT INTO wallet_transactions (wallet_id, user_id, kind, balance_type, amount,"
        " previous_balance, new_balance, reason, metadata, created_at)"
        " SELECT id, user_id, %s, %s, %s, %s, %s, 'test', '{\"n\": 1}', %s"
        " FROM wallets WHERE user_id = %s RETURNING id",
        (kind, balance_type, amount, previous, previous + amount, at, user_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
def ana(db: Db) -> UUID:
    acme = f.company(db, "Acme", allowance=150)
    return f.member(db, acme, ANA, compliment=40, redeemable=25)


@pytest.fixture
def rows(db: Db, ana: UUID) -> dict[str, int]:
    """Five ledger rows of Ana's, one day apart: name -> id."""
    spec: list[tuple[str, str, str, int]] = [
        ("reset", "RESET", "COMPLIMENT", 100),
        ("sent", "DEBIT", "COMPLIMENT", -10),
        ("received", "CREDIT", "REDEEMABLE", 15),
        ("sent2", "DEBIT", "COMPLIMENT", -50),
        ("received2", "CREDIT", "REDEEMABLE", 10),
    ]
    return {
        name: ledger_row(
            db, ana, kind=kind, balance_type=bt, amount=amount, at=T0 + timedelta(days=day)
        )
        for day, (name, kind, bt, amount) in enumerate(spec)
    }


async def test_wallet_shows_both_balances(
    api: httpx.AsyncClient, bearer: Bearer, ana: UUID
) -> None:
    response = await api.get("/me/wallet", headers=bearer(ANA))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.pop("updated_at") is not None
    assert body == {"compliment_balance": 40, "redeemable_balance": 25, "weekly_allowance": 150}


async def test_a_user_without_a_wallet_has_zero_balances(
    api: httpx.AsyncClient, bearer: Bearer, db: Db
) -> None:
    f.member(db, f.company(db, "Acme"), ANA)
    response = await api.get("/me/wallet", headers=bearer(ANA))
    assert response.json() == {
        "compliment_balance": 0,
        "redeemable_balance": 0,
        "weekly_allowance": 100,
        "updated_at": None,
    }
    listing = await api.get("/me/wallet/transactions", headers=bearer(ANA))
    assert listing.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


async def test_transactions_are_newest_first_with_every_field(
    api: httpx.AsyncClient, bearer: Bearer, ana: UUID, rows: dict[str, int]
) -> None:
    response = await api.get("/me/wallet/transactions", headers=bearer(ANA))
    assert ids(response) == [
        rows["received2"],
        rows["sent2"],
        rows["received"],
        rows["sent"],
        rows["reset"],
    ]
    newest = response.json()["items"][0]
    assert newest == {
        "id": rows["received2"],
        "kind": "CREDIT",
        "balance_type": "REDEEMABLE",
        "amount": 10,
        "previous_balance": 0,
        "new_balance": 10,
        "reason": "test",
        "metadata": {"n": 1},
        "created_at": (T0 + timedelta(days=4)).isoformat().replace("+00:00", "Z"),
    }


async def test_rows_of_one_moment_are_ordered_by_id(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, ana: UUID
) -> None:
    first = ledger_row(db, ana, kind="DEBIT", balance_type="COMPLIMENT", amount=-5, at=T0)
    second = ledger_row(db, ana, kind="CREDIT", balance_type="REDEEMABLE", amount=5, at=T0)
    assert ids(await api.get("/me/wallet/transactions", headers=bearer(ANA))) == [second, first]


async def test_transactions_are_paged(
    api: httpx.AsyncClient, bearer: Bearer, ana: UUID, rows: dict[str, int]
) -> None:
    response = await api.get("/me/wallet/transactions?limit=2&offset=2", headers=bearer(ANA))
    assert ids(response) == [rows["received"], rows["sent"]]
    assert response.json()["total"] == 5
    assert (response.json()["limit"], response.json()["offset"]) == (2, 2)
    past_the_end = await api.get("/me/wallet/transactions?offset=10", headers=bearer(ANA))
    assert (ids(past_the_end), past_the_end.json()["total"]) == ([], 5)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"balance_type": "COMPLIMENT"}, ["sent2", "sent", "reset"]),
        ({"balance_type": "REDEEMABLE"}, ["received2", "received"]),
        ({"kind": "DEBIT"}, ["sent2", "sent"]),
        ({"kind": "RESET"}, ["reset"]),
        ({"kind": "CREDIT", "balance_type": "COMPLIMENT"}, []),
        # `from` is inclusive, `to` exclusive.
        (
            {"from": (T0 + timedelta(days=1)).isoformat()},
            ["received2", "sent2", "received", "sent"],
        ),
        ({"to": (T0 + timedelta(days=1)).isoformat()}, ["reset"]),
        (
            {
                "from": (T0 + timedelta(days=1)).isoformat(),
                "to": (T0 + timedelta(days=3)).isoformat(),
            },
            ["received", "sent"],
        ),
        # No offset means UTC; another offset is the same moment.
        ({"from": "2026-11-05T12:00:00"}, ["received2", "sent2"]),
        ({"from": "2026-11-05T09:00:00-03:00"}, ["received2", "sent2"]),
        ({"from": "2026-11-05T09:00:01-03:00"}, ["received2"]),
        ({"from": T0.isoformat(), "to": T0.isoformat()}, []),
        ({"kind": "DEBIT", "from": (T0 + timedelta(days=2)).isoformat()}, ["sent2"]),
    ],
)
async def test_transaction_filters(
    api: httpx.AsyncClient,
    bearer: Bearer,
    rows: dict[str, int],
    query: dict[str, str],
    expected: list[str],
) -> None:
    response = await api.get("/me/wallet/transactions", params=query, headers=bearer(ANA))
    assert ids(response) == [rows[name] for name in expected]
    assert response.json()["total"] == len(expected)


def assert_invalid(response: httpx.Response, location: list[str]) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert error["code"] == "validation_error"
    assert error["request_id"] == response.headers["x-request-id"]
    assert [detail["location"] for detail in error["details"]] == [location]
    return error


async def test_from_after_to_is_refused_in_the_common_envelope(
    api: httpx.AsyncClient, bearer: Bearer, ana: UUID
) -> None:
    response = await api.get(
        "/me/wallet/transactions",
        params={"from": "2026-11-05T00:00:00Z", "to": "2026-11-04T23:59:59Z"},
        headers=bearer(ANA),
    )
    error = assert_invalid(response, ["query", "from"])
    assert error["details"][0]["message"] == "'from' must not be later than 'to'"
    # The same moment written with two offsets is not a reversed range.
    same = await api.get(
        "/me/wallet/transactions",
        params={"from": "2026-11-05T00:00:00Z", "to": "2026-11-04T21:00:00-03:00"},
        headers=bearer(ANA),
    )
    assert same.status_code == 200


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ({"kind": "REFUND"}, ["query", "kind"]),
        ({"balance_type": "compliment"}, ["query", "balance_type"]),
        ({"from": "yesterday"}, ["query", "from"]),
        ({"to": "2026-13-01T00:00:00Z"}, ["query", "to"]),
        # Numbers would otherwise be read as Unix timestamps.
        ({"to": "0.5"}, ["query", "to"]),
        ({"from": "1700000000"}, ["query", "from"]),
        ({"limit": "0"}, ["query", "limit"]),
        ({"limit": "201"}, ["query", "limit"]),
        ({"offset": "-1"}, ["query", "offset"]),
    ],
)
async def test_bad_filters_are_validation_errors(
    api: httpx.AsyncClient,
    bearer: Bearer,
    ana: UUID,
    query: dict[str, str],
    location: list[str],
) -> None:
    response = await api.get("/me/wallet/transactions", params=query, headers=bearer(ANA))
    assert_invalid(response, location)


async def test_only_the_callers_own_wallet_and_rows_are_visible(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, ana: UUID, rows: dict[str, int]
) -> None:
    acme = f.company(db, "Acme2")
    colleague = f.member(db, acme, "bia@acme2.example", compliment=7, redeemable=3)
    other = f.company(db, "Globex")
    outsider = f.member(db, other, "zed@globex.example", compliment=99, redeemable=88)
    for user_id in (colleague, outsider):
        ledger_row(db, user_id, kind="RESET", balance_type="COMPLIMENT", amount=5, at=T0)

    mine = await api.get("/me/wallet/transactions?limit=200", headers=bearer(ANA))
    assert sorted(ids(mine)) == sorted(rows.values())
    theirs = await api.get("/me/wallet/transactions", headers=bearer("zed@globex.example"))
    assert len(ids(theirs)) == 1
    assert set(ids(theirs)).isdisjoint(rows.values())
    wallet = (await api.get("/me/wallet", headers=bearer("zed@globex.example"))).json()
    assert (wallet["compliment_balance"], wallet["redeemable_balance"]) == (99, 88)
    # Query parameters cannot point at someone else's wallet: unknown ones are ignored.
    sneaky = await api.get(
        "/me/wallet/transactions",
        params={"user_id": str(outsider), "wallet_id": str(outsider)},
        headers=bearer(ANA),
    )
    assert sorted(ids(sneaky)) == sorted(rows.values())
