"""Sending compliments and listing them (and colleagues), through the real app."""

import asyncio
import logging
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
from psycopg import errors
from sqlmodel.ext.asyncio.session import AsyncSession

from {{ cookiecutter.package_name }}.features.compliments.service import (
    check_compliment,
    send_compliment,
)
from {{ cookiecutter.package_name }}.lib.errors import DomainRuleError, NotFoundError

from . import factories as f
from .checks import assert_error, wait_for_lock_waiters
from .conftest import libpq_url
from .factories import Db
from .tokens import Bearer

ANA, BRUNO, CARLA, DORA = (f"{name}@acme.example" for name in ("ana", "bruno", "carla", "dora_lee"))
ZED, YAN = "zed@globex.example", "yan@globex.example"
MESSAGE = "Great work on the release!"


class People:
    """Acme: Ana and Bruno (100 coins each), Carla (deactivated), Dora (no wallet).
    Globex, another tenant: Zed and Yan (100 coins each)."""

    def __init__(self, db: Db) -> None:
        self.acme = f.company(db, "Acme")
        self.globex = f.company(db, "Globex")
        self.ana = f.member(db, self.acme, ANA)
        self.bruno = f.member(db, self.acme, BRUNO)
        self.carla = f.member(db, self.acme, CARLA, active=False)
        self.dora = f.member(db, self.acme, DORA)
        self.zed = f.member(db, self.globex, ZED)
        self.yan = f.member(db, self.globex, YAN)
        for user_id in (self.ana, self.bruno, self.carla, self.zed, self.yan):
            f.fund(db, user_id, 100)


@pytest.fixture
def people(db: Db) -> People:
    return People(db)


async def send(
    api: httpx.AsyncClient,
    bearer: Bearer,
    sender: str,
    receiver_id: UUID | str,
    coins: Any = 10,
    message: Any = MESSAGE,
    **extra: Any,
) -> httpx.Response:
    body = {"receiver_id": str(receiver_id), "coins": coins, "message": message, **extra}
    return await api.post("/compliments", json=body, headers=bearer(sender))


def snapshot(db: Db) -> tuple[Any, ...]:
    """Everything a compliment could change."""
    return (
        db.execute(
            "SELECT user_id, compliment_balance, redeemable_balance FROM wallets"
        ).fetchall(),
        db.execute("SELECT count(*), coalesce(max(id), 0) FROM wallet_transactions").fetchone(),
        db.execute("SELECT count(*) FROM compliments").fetchone(),
    )


def compliment_rows(db: Db) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, company_id, sender_id, receiver_id, coins, message FROM compliments"
    ).fetchall()


# --- Sending ----------------------------------------------------------------------------


async def test_sending_moves_the_coins_and_writes_the_ledger_exactly(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    response = await send(api, bearer, ANA, people.bruno, coins=15)

    assert response.status_code == 201, response.text
    body = response.json()
    compliment_id = UUID(body.pop("id"))
    assert body.pop("created_at")
    assert body == {
        "sender": {"id": str(people.ana), "name": "Ana"},
        "receiver": {"id": str(people.bruno), "name": "Bruno"},
        "coins": 15,
        "message": MESSAGE,
    }
    assert f.balances(db, people.ana) == (85, 0)
    assert f.balances(db, people.bruno) == (100, 15)
    meta = {
        "compliment_id": str(compliment_id),
        "company_id": str(people.acme),
        "sender_id": str(people.ana),
        "receiver_id": str(people.bruno),
    }
    assert f.ledger(db, people.ana)[1:] == [("DEBIT", "COMPLIMENT", -15, 100, 85, meta)]
    assert f.ledger(db, people.bruno)[1:] == [("CREDIT", "REDEEMABLE", 15, 0, 15, meta)]
    reasons = db.execute(
        "SELECT reason FROM wallet_transactions WHERE kind <> 'RESET' ORDER BY id"
    ).fetchall()
    assert reasons == [("Compliment sent",), ("Compliment received",)]
    assert compliment_rows(db) == [
        (compliment_id, people.acme, people.ana, people.bruno, 15, MESSAGE)
    ]
    assert f.ledger_problems(db) == []


async def test_a_receiver_without_a_wallet_gets_one(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    assert f.balances(db, people.dora) is None
    assert (await send(api, bearer, ANA, people.dora, coins=20)).status_code == 201
    assert f.balances(db, people.dora) == (0, 20)
    assert [row[:5] for row in f.ledger(db, people.dora)] == [("CREDIT", "REDEEMABLE", 20, 0, 20)]
    assert f.ledger_problems(db) == []


async def test_admins_send_compliments_too(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    boss = f.member(db, people.acme, "boss@acme.example", role="admin")
    f.fund(db, boss, 50)
    assert (await send(api, bearer, "boss@acme.example", people.ana)).status_code == 201


@pytest.mark.parametrize(
    ("coins", "message", "stored"),
    [
        (5, "x" * 10, "x" * 10),
        (100, "ã" * 280, "ã" * 280),  # characters, not bytes, in Python and in Postgres
        (50, "🎉" * 280, "🎉" * 280),
        (95, "   thank you!!   ", "thank you!!"),
        (10, "\tthank you!\n" + " " * 300, "thank you!"),
    ],
)
async def test_rule_boundaries_are_accepted(
    api: httpx.AsyncClient,
    bearer: Bearer,
    db: Db,
    people: People,
    coins: int,
    message: str,
    stored: str,
) -> None:
    response = await send(api, bearer, ANA, people.bruno, coins=coins, message=message)
    assert response.status_code == 201, response.text
    assert response.json()["message"] == stored
    assert [row[4:] for row in compliment_rows(db)] == [(coins, stored)]
    assert f.balances(db, people.ana) == (100 - coins, 0)


@pytest.mark.parametrize(
    "coins", [0, 4, 7, 101, 105, -5, 12.5, 10.0, "10", "ten", True, None, [10], 10**30]
)
async def test_coins_outside_5_to_100_in_steps_of_5_are_refused(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People, coins: Any
) -> None:
    before = snapshot(db)
    response = await send(api, bearer, ANA, people.bruno, coins=coins)
    error = assert_error(response, 422, "validation_error")
    assert [d["location"] for d in error["details"]] == [["body", "coins"]]
    assert snapshot(db) == before


@pytest.mark.parametrize(
    "message",
    ["too short", "x" * 281, "   123456789   ", " " * 20, "", None, 1234567890, "x" * 20 + "\x00"],
)
async def test_messages_outside_10_to_280_characters_are_refused(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People, message: Any
) -> None:
    before = snapshot(db)
    response = await send(api, bearer, ANA, people.bruno, message=message)
    error = assert_error(response, 422, "validation_error")
    assert [d["location"] for d in error["details"]] == [["body", "message"]]
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("body", "location", "error_type"),
    [
        ({"coins": 10, "message": MESSAGE}, ["body", "receiver_id"], "missing"),
        ({"receiver_id": "bruno", "coins": 10, "message": MESSAGE}, ["body", "receiver_id"], None),
        ({"receiver_id": "{bruno}", "message": MESSAGE}, ["body", "coins"], "missing"),
        # The sender and the company are the caller's; the body cannot name them.
        (
            {"receiver_id": "{bruno}", "coins": 10, "message": MESSAGE, "sender_id": "{zed}"},
            ["body", "sender_id"],
            "extra_forbidden",
        ),
        (
            {"receiver_id": "{bruno}", "coins": 10, "message": MESSAGE, "company_id": "{globex}"},
            ["body", "company_id"],
            "extra_forbidden",
        ),
    ],
)
async def test_malformed_bodies_are_refused(
    api: httpx.AsyncClient,
    bearer: Bearer,
    db: Db,
    people: People,
    body: dict[str, Any],
    location: list[str],
    error_type: str | None,
) -> None:
    ids = {"{bruno}": str(people.bruno), "{zed}": str(people.zed), "{globex}": str(people.globex)}
    body = {key: ids.get(value, value) for key, value in body.items()}
    before = snapshot(db)
    response = await api.post("/compliments", json=body, headers=bearer(ANA))
    error = assert_error(response, 422, "validation_error")
    assert [d["location"] for d in error["details"]] == [location]
    if error_type:
        assert error["details"][0]["type"] == error_type
    assert snapshot(db) == before


async def test_a_body_that_is_not_json_is_refused(
    api: httpx.AsyncClient, bearer: Bearer, people: People
) -> None:
    response = await api.post(
        "/compliments",
        content=b"coins=10",
        headers={**bearer(ANA), "Content-Type": "application/json"},
    )
    assert_error(response, 422, "validation_error")


async def test_no_compliments_to_oneself(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    before = snapshot(db)
    error = assert_error(await send(api, bearer, ANA, people.ana), 422, "self_compliment")
    assert "yourself" in error["message"]
    assert snapshot(db) == before


async def test_no_compliments_to_a_deactivated_colleague(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    before = snapshot(db)
    assert_error(await send(api, bearer, ANA, people.carla), 422, "receiver_inactive")
    assert snapshot(db) == before


async def test_a_receiver_of_another_company_looks_like_an_unknown_one(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    before = snapshot(db)
    other_tenant = assert_error(await send(api, bearer, ANA, people.zed), 404, "receiver_not_found")
    unknown = assert_error(await send(api, bearer, ANA, uuid4()), 404, "receiver_not_found")
    assert other_tenant == unknown
    # Neither company's wallets, ledger or compliments changed.
    assert snapshot(db) == before


async def test_an_allowance_that_cannot_cover_the_coins_is_refused(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    f.fund(db, people.ana, 10)
    before = snapshot(db)
    error = assert_error(
        await send(api, bearer, ANA, people.bruno, coins=15), 409, "insufficient_balance"
    )
    assert "15" in error["message"]
    assert snapshot(db) == before

    assert (await send(api, bearer, ANA, people.bruno, coins=10)).status_code == 201
    assert f.balances(db, people.ana) == (0, 0)
    assert_error(await send(api, bearer, ANA, people.bruno, coins=5), 409, "insufficient_balance")
    assert f.balances(db, people.ana) == (0, 0)
    assert f.ledger_problems(db) == []


async def test_a_sender_without_a_wallet_has_nothing_to_give(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    before = snapshot(db)
    assert_error(await send(api, bearer, DORA, people.ana, coins=5), 409, "insufficient_balance")
    assert snapshot(db) == before
    assert f.balances(db, people.dora) is None


async def test_the_ledger_stays_exact_over_a_back_and_forth(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    # Both directions between two people: both lock orders of their wallets.
    moves = [(ANA, people.bruno, 15), (BRUNO, people.ana, 30), (ANA, people.dora, 25)]
    moves += [(BRUNO, people.dora, 5), (ANA, people.bruno, 60), (BRUNO, people.ana, 65)]
    for sender, receiver, coins in moves:
        assert (await send(api, bearer, sender, receiver, coins=coins)).status_code == 201
    assert_error(await send(api, bearer, ANA, people.bruno, coins=5), 409, "insufficient_balance")

    assert f.balances(db, people.ana) == (0, 95)
    assert f.balances(db, people.bruno) == (0, 75)
    assert f.balances(db, people.dora) == (0, 30)
    assert [row[2:5] for row in f.ledger(db, people.ana)] == [
        (100, 0, 100),  # the allowance
        (-15, 100, 85),
        (30, 0, 30),
        (-25, 85, 60),
        (-60, 60, 0),
        (65, 30, 95),
    ]
    assert f.ledger_problems(db) == []
    sent, received = (
        db.execute(
            "SELECT coalesce(sum(amount), 0) FROM wallet_transactions WHERE kind = %s", (kind,)
        ).fetchone()
        for kind in ("DEBIT", "CREDIT")
    )
    assert sent == (-200,)
    assert received == (200,)


async def test_a_deadlock_with_another_writer_is_retried(
    api: httpx.AsyncClient,
    bearer: Bearer,
    db: Db,
    people: People,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another transaction holds the wallet the compliment locks second, then waits for
    the one it locked first: Postgres aborts the compliment's transaction, which retries."""
    first, second = sorted([people.ana, people.bruno])
    touch = "UPDATE wallets SET updated_at = now() WHERE user_id = %s"
    with psycopg.connect(libpq_url(database_url)) as other:
        # The compliment's backend must be the one to detect the deadlock.
        other.execute("SET deadlock_timeout = '20s'")
        other.execute(touch, (second,))
        with caplog.at_level(logging.WARNING):
            sending = asyncio.create_task(send(api, bearer, ANA, people.bruno, coins=25))
            await wait_for_lock_waiters(db, 1)
            closing_the_cycle = asyncio.create_task(
                asyncio.to_thread(other.execute, touch, (first,))
            )
            await closing_the_cycle  # the compliment gave up its lock: this one got it
            other.commit()
            response = await sending

    assert response.status_code == 201, response.text
    assert any("deadlock" in record.getMessage() for record in caplog.records)
    assert f.balances(db, people.ana) == (75, 0)
    assert f.balances(db, people.bruno) == (100, 25)
    assert f.ledger_problems(db) == []
    assert len(compliment_rows(db)) == 1


def test_the_service_checks_the_rules_without_http() -> None:
    me, you = uuid4(), uuid4()
    assert check_compliment(me, you, 5, "  ten chars!  ") == "ten chars!"
    for sender, receiver, coins, message, code in [
        (me, me, 10, MESSAGE, "self_compliment"),
        (me, you, 0, MESSAGE, "invalid_coins"),
        (me, you, 12, MESSAGE, "invalid_coins"),
        (me, you, 105, MESSAGE, "invalid_coins"),
        (me, you, 10, "   short   ", "invalid_message"),
        (me, you, 10, "x" * 281, "invalid_message"),
        (me, you, 10, "ten chars\x00!", "invalid_message"),
    ]:
        with pytest.raises(DomainRuleError) as caught:
            check_compliment(sender, receiver, coins, message)
        assert caught.value.code == code


async def test_the_service_refuses_senders_the_api_never_lets_through(
    session: AsyncSession, db: Db, people: People
) -> None:
    """A deactivated sender, or one of another company (the api's caller check stops both)."""
    before = snapshot(db)
    with pytest.raises(DomainRuleError) as inactive:
        await send_compliment(
            session,
            company_id=people.acme,
            sender_id=people.carla,
            receiver_id=people.ana,
            coins=10,
            message=MESSAGE,
        )
    assert inactive.value.code == "sender_inactive"
    with pytest.raises(NotFoundError) as elsewhere:
        await send_compliment(
            session,
            company_id=people.acme,
            sender_id=people.zed,
            receiver_id=people.ana,
            coins=10,
            message=MESSAGE,
        )
    assert elsewhere.value.code == "sender_not_found"
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("coins", 0, "ck_compliments_coins_valid"),
        ("coins", 7, "ck_compliments_coins_valid"),
        ("coins", 105, "ck_compliments_coins_valid"),
        ("coins", -10, "ck_compliments_coins_valid"),
        ("message", "x" * 9, "ck_compliments_message_length"),
        ("message", "x" * 281, "ck_compliments_message_length"),
        ("receiver_id", "{sender}", "ck_compliments_not_to_self"),
    ],
)
def test_the_database_enforces_the_rules_too(
    db: Db, people: People, column: str, value: Any, constraint: str
) -> None:
    row: dict[str, Any] = {
        "company_id": people.acme,
        "sender_id": people.ana,
        "receiver_id": people.bruno,
        "coins": 10,
        "message": MESSAGE,
    }
    row[column] = people.ana if value == "{sender}" else value
    with pytest.raises(errors.CheckViolation) as caught:
        db.execute(
            "INSERT INTO compliments (company_id, sender_id, receiver_id, coins, message)"
            " VALUES (%(company_id)s, %(sender_id)s, %(receiver_id)s, %(coins)s, %(message)s)",
            row,
        )
    assert caught.value.diag.constraint_name == constraint


# --- Listing ----------------------------------------------------------------------------


async def test_compliments_sent_and_received_newest_first(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    for coins in (5, 10, 15):
        assert (await send(api, bearer, ANA, people.bruno, coins=coins)).status_code == 201
    for coins in (20, 25):
        assert (await send(api, bearer, BRUNO, people.ana, coins=coins)).status_code == 201
    assert (await send(api, bearer, BRUNO, people.dora, coins=30)).status_code == 201

    sent = await api.get("/compliments?direction=sent", headers=bearer(ANA))
    assert sent.status_code == 200, sent.text
    assert [item["coins"] for item in sent.json()["items"]] == [15, 10, 5]
    assert sent.json()["total"] == 3
    first = sent.json()["items"][0]
    assert first["sender"] == {"id": str(people.ana), "name": "Ana"}
    assert first["receiver"] == {"id": str(people.bruno), "name": "Bruno"}
    assert first["message"] == MESSAGE

    received = await api.get("/compliments?direction=received", headers=bearer(ANA))
    assert [item["coins"] for item in received.json()["items"]] == [25, 20]
    assert {item["sender"]["name"] for item in received.json()["items"]} == {"Bruno"}

    page = await api.get("/compliments?direction=sent&limit=1&offset=1", headers=bearer(ANA))
    assert [item["coins"] for item in page.json()["items"]] == [10]
    assert (page.json()["total"], page.json()["limit"], page.json()["offset"]) == (3, 1, 1)

    brunos = await api.get("/compliments?direction=sent", headers=bearer(BRUNO))
    assert [item["coins"] for item in brunos.json()["items"]] == [30, 25, 20]
    doras = await api.get("/compliments?direction=received", headers=bearer(DORA))
    assert [item["coins"] for item in doras.json()["items"]] == [30]
    assert (await api.get("/compliments?direction=sent", headers=bearer(DORA))).json()[
        "items"
    ] == []


@pytest.mark.parametrize("query", ["", "?direction=all", "?direction=SENT", "?direction="])
async def test_the_direction_is_required(
    api: httpx.AsyncClient, bearer: Bearer, people: People, query: str
) -> None:
    error = assert_error(
        await api.get(f"/compliments{query}", headers=bearer(ANA)), 422, "validation_error"
    )
    assert [d["location"] for d in error["details"]] == [["query", "direction"]]


async def test_listings_never_show_another_companys_rows(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, people: People
) -> None:
    assert (await send(api, bearer, ANA, people.bruno, coins=5)).status_code == 201
    assert (await send(api, bearer, ZED, people.yan, coins=10)).status_code == 201
    assert (await send(api, bearer, YAN, people.zed, coins=15)).status_code == 201

    globex_ids = {str(people.zed), str(people.yan)}
    for who in (ANA, BRUNO):
        for direction in ("sent", "received"):
            response = await api.get(f"/compliments?direction={direction}", headers=bearer(who))
            for item in response.json()["items"]:
                assert {item["sender"]["id"], item["receiver"]["id"]}.isdisjoint(globex_ids)
    zeds = await api.get("/compliments?direction=sent", headers=bearer(ZED))
    assert [(i["receiver"]["name"], i["coins"]) for i in zeds.json()["items"]] == [("Yan", 10)]
    colleagues = await api.get("/colleagues?limit=200", headers=bearer(ZED))
    assert [c["name"] for c in colleagues.json()["items"]] == ["Yan"]
    # Parameters naming the other company are not filters the api knows: ignored.
    sneaky = await api.get(
        "/colleagues", params={"company_id": str(people.globex)}, headers=bearer(ANA)
    )
    assert str(people.zed) not in sneaky.text


async def test_colleagues_are_the_active_others_of_my_company_by_name(
    api: httpx.AsyncClient, bearer: Bearer, people: People
) -> None:
    response = await api.get("/colleagues", headers=bearer(ANA))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "items": [
            {
                "id": str(people.bruno),
                "name": "Bruno",
                "email": BRUNO,
                "department": None,
                "job_title": None,
            },
            {
                "id": str(people.dora),
                "name": "Dora_Lee",
                "email": DORA,
                "department": None,
                "job_title": None,
            },
        ],
        "total": 2,
        "limit": 50,
        "offset": 0,
    }
    paged = await api.get("/colleagues?limit=1&offset=1", headers=bearer(ANA))
    assert ([c["name"] for c in paged.json()["items"]], paged.json()["total"]) == (["Dora_Lee"], 2)


@pytest.mark.parametrize(
    ("q", "names"),
    [
        ("BRU", ["Bruno"]),
        ("acme.example", ["Bruno", "Dora_Lee"]),
        ("  bruno  ", ["Bruno"]),
        ("_", ["Dora_Lee"]),  # LIKE wildcards match themselves
        ("%", []),
        ("\\", []),
        ("a\x00b", None),  # Postgres text cannot hold NUL: a validation error, not a 500
        ("ana", []),  # not myself
        ("carla", []),  # deactivated
        ("zed", []),  # another company
        ("globex", []),
        ("", ["Bruno", "Dora_Lee"]),
    ],
)
async def test_colleague_search(
    api: httpx.AsyncClient, bearer: Bearer, people: People, q: str, names: list[str] | None
) -> None:
    response = await api.get("/colleagues", params={"q": q}, headers=bearer(ANA))
    if names is None:
        error = assert_error(response, 422, "validation_error")
        assert [d["location"] for d in error["details"]] == [["query", "q"]]
        return
    assert response.status_code == 200, response.text
    assert [c["name"] for c in response.json()["items"]] == names
    assert response.json()["total"] == len(names)


async def test_a_search_longer_than_100_characters_is_refused(
    api: httpx.AsyncClient, bearer: Bearer, people: People
) -> None:
    response = await api.get("/colleagues", params={"q": "x" * 101}, headers=bearer(ANA))
    error = assert_error(response, 422, "validation_error")
    assert [d["location"] for d in error["details"]] == [["query", "q"]]


# --- Every endpoint of this feature -------------------------------------------------------

ENDPOINTS = [
    ("GET", "/me/wallet"),
    ("GET", "/me/wallet/transactions"),
    ("POST", "/compliments"),
    ("GET", "/compliments?direction=sent"),
    ("GET", "/colleagues"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_endpoint_needs_a_signed_in_user(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, method: str, path: str
) -> None:
    assert_error(await api.request(method, path), 401, "not_authenticated")
    # A valid token whose subject is no user of ours.
    assert_error(
        await api.request(method, path, headers=bearer("auth0|nobody")), 401, "unknown_user"
    )


async def test_the_openapi_schema_documents_models_errors_and_examples(
    api: httpx.AsyncClient,
) -> None:
    schema = (await api.get("/openapi.json")).json()
    paths, components = schema["paths"], schema["components"]["schemas"]

    def ref(response: dict[str, Any]) -> str:
        return str(response["content"]["application/json"]["schema"]["$ref"]).split("/")[-1]

    expected = {
        ("post", "/compliments"): (
            "201",
            "ComplimentOut",
            {"400", "401", "403", "404", "409", "422", "503"},
        ),
        ("get", "/compliments"): ("200", "Page_ComplimentOut_", {"401", "403", "422", "503"}),
        ("get", "/colleagues"): ("200", "Page_Colleague_", {"401", "403", "422", "503"}),
        ("get", "/me/wallet"): ("200", "WalletBalances", {"401", "403", "503"}),
        ("get", "/me/wallet/transactions"): (
            "200",
            "Page_Transaction_",
            {"401", "403", "422", "503"},
        ),
    }
    # Every route may answer 408 and 413: the request limits refuse a body before routing.
    for (method, path), (ok, model, errors_documented) in expected.items():
        errors_documented = {*errors_documented, "408", "413"}
        responses = paths[path][method]["responses"]
        assert ref(responses[ok]) == model
        assert set(responses) == {ok, *errors_documented}
        for code in errors_documented:
            assert ref(responses[code]) == "ErrorEnvelope", (method, path, code)
    request = paths["/compliments"]["post"]["requestBody"]["content"]["application/json"]
    assert request["schema"]["$ref"].endswith("/SendCompliment")
    [example] = components["SendCompliment"]["examples"]
    assert set(example) == {"receiver_id", "coins", "message"}
    for name in ("ComplimentOut", "Colleague", "WalletBalances", "Transaction"):
        assert components[name]["examples"], name
    parameters = {p["name"] for p in paths["/me/wallet/transactions"]["get"]["parameters"]}
    assert parameters == {"balance_type", "kind", "from", "to", "limit", "offset"}
