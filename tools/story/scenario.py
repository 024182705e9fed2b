"""The story itself: the steps, told over HTTP to a running `Stack`, checked as they go."""

import shlex
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import psycopg

from .client import Client
from .processes import Stack
from .rules import Entry, Expected, Person

# From before the first cron run to after the second: far more than the story needs.
WEEK_BOUNDARY_MARGIN = 120.0
IMPORT_SECONDS = 60.0

COMPANY_DOMAIN = "acme.example"
START_ALLOWANCE = 100  # the default of a company dev-token creates
NEW_ALLOWANCE = 150


def _person(key: str, name: str) -> Person:
    return Person(key, name, f"{key}@{COMPANY_DOMAIN}")


def csv_rows() -> list[tuple[str, str, str, str]]:
    """The file the admin imports: (name, email, department, job title)."""
    return [
        ("Elis Regina", "Elis@acme.example", "Sales", "Account manager"),
        ("Fábio Souza", "fabio@acme.example", "Engineering", ""),
        ("Bruno Lima", "bruno@acme.example", "Engineering", "Backend developer"),  # exists
        ("X", "not-an-email", "", ""),  # too short a name, a malformed email
        ("Elis R.", "elis@acme.example", "Sales", ""),  # repeated in the file
    ]


def csv_bytes(rows: list[tuple[str, str, str, str]]) -> bytes:
    lines = ["name,email,department,job_title", *(",".join(row) for row in rows)]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class Outcome:
    """What the story observed at the end; the caller may check it against literals."""

    admin_token: str
    admin_email: str
    api_url: str
    balances: dict[str, tuple[int, int]]  # email -> (compliment, redeemable), from the api
    import_counts: dict[str, int]
    resets: list[dict[str, Any]]
    refusals: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def tell(stack: Stack, token_ttl: int = 3600) -> Outcome:
    """The story, step by step (told to `stack.say`); raises StoryError at the first difference."""
    story = _Story(stack, token_ttl)
    return story.tell()


class _Story:
    def __init__(self, stack: Stack, token_ttl: int) -> None:
        self.stack = stack
        self.say = stack.say
        self.ttl = token_ttl
        self.expected = Expected(START_ALLOWANCE)
        self.refusals: list[str] = []
        self.resets: list[dict[str, Any]] = []
        self.step_number = 0
        self.seconds: dict[str, float] = {}

    def step(self, title: str) -> None:
        self.step_number += 1
        self.say("")
        self.say(f"{self.step_number}. {title}")

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            raise self.stack.failure(message)

    def client(self, person: Person) -> Client:
        return Client(self.stack, person.token)

    def tell(self) -> Outcome:
        started = time.monotonic()
        admin = self.bootstrap()
        admin_api = self.client(admin)
        self.add_users(admin_api)
        import_counts = self.import_csv(admin_api)
        self.set_allowance(admin_api)
        self.sign_in_colleagues()
        self.send_compliments()
        self.deactivate(admin_api, self.expected.people["davi"])
        self.refuse_inactive_receiver()
        self.step("Balances and ledgers before the weekly reset")
        self.verify(admin_api)
        self.stay_within_one_week()
        self.weekly_reset()
        self.spend_after_reset()
        self.weekly_reset()
        self.step("Balances and ledgers at the end")
        balances = self.verify(admin_api)
        self.seconds["story"] = time.monotonic() - started
        return Outcome(
            admin_token=admin.token,
            admin_email=admin.email,
            api_url=self.stack.api_url,
            balances=balances,
            import_counts=import_counts,
            resets=self.resets,
            refusals=self.refusals,
            seconds=self.seconds,
        )

    # --- the steps

    def bootstrap(self) -> Person:
        self.step("The first admin signs in with dev-token, which creates the company")
        admin = _person("ana", "Ana Costa")
        admin.role = "admin"
        args = self.stack.dev_token_command(admin.email, "--role", "admin", "--name", admin.name)
        self.say(f"$ {shlex.join(args)}")
        admin.token = self.stack.dev_token(
            admin.email, "--role", "admin", "--name", admin.name, ttl=self.ttl
        )
        self.expected.added(admin)
        me = self.client(admin).get("/me")
        self.check(me["role"] == "admin" and me["email"] == admin.email, f"GET /me: {me}")
        admin.id = me["id"]
        company = self.client(admin).get("/admin/company")
        self.check(
            company["email_domain"] == COMPANY_DOMAIN
            and company["weekly_renewal_amount"] == START_ALLOWANCE,
            f"GET /admin/company: {company}",
        )
        self.say(
            f"GET /me -> {me['name']} ({me['role']}) of {me['company_name']}; the company's "
            f"weekly allowance is {company['weekly_renewal_amount']} coins"
        )
        return admin

    def add_users(self, admin_api: Client) -> None:
        self.step("The admin adds three colleagues (POST /admin/users)")
        for key, name in (("bruno", "Bruno Lima"), ("carla", "Carla Dias"), ("davi", "Davi Rocha")):
            self.add_user(admin_api, _person(key, name))
        taken = admin_api.post(
            "/admin/users", {"name": "Bruno Again", "email": "BRUNO@acme.example"}, expect=409
        )
        self.check(taken["error"]["code"] == "email_taken", f"duplicate email: {taken}")
        self.say("  the same email again -> 409 email_taken")

    def add_user(self, admin_api: Client, person: Person) -> None:
        created = admin_api.post("/admin/users", {"name": person.name, "email": person.email}, 201)
        self.expected.added(person)
        person.id = created["id"]
        wallet = created["wallet"]
        self.check(
            wallet == {"compliment_balance": person.compliment, "redeemable_balance": 0},
            f"{person.email}'s new wallet: {wallet}",
        )
        self.say(f"  {person.name} <{person.email}> -> 201, {person.compliment} coins to give")

    def import_csv(self, admin_api: Client) -> dict[str, int]:
        self.step("The admin imports more people from a CSV; the worker does the work")
        rows = csv_rows()
        for row in rows:
            self.say(f"  | {' | '.join(row)}")
        started = time.monotonic()
        accepted = admin_api.upload(
            "/admin/users/imports", "file", "people.csv", csv_bytes(rows), expect=202
        )
        self.stack.job_ids.append(f"csv-import:{accepted['id']}")
        self.say(f"POST /admin/users/imports -> 202 {accepted['status']}; polling its status")
        state = self.poll_import(admin_api, urllib.parse.urlsplit(accepted["status_url"]).path)
        self.seconds["csv_import"] = time.monotonic() - started
        keys = {"elis@acme.example": "elis", "fabio@acme.example": "fabio"}
        want = self.expected.imported([(name, email) for name, email, _, _ in rows], keys)
        counts: dict[str, int] = state["counts"]
        self.check(
            state["status"] == "completed"
            and counts
            == {
                "rows": want.rows,
                "created": want.created,
                "skipped": want.skipped,
                "deactivated": want.deactivated,
                "invalid": want.invalid,
            },
            f"the import ended {state['status']} with {counts}, expected {want}: {state}",
        )
        error_rows = {error["row_number"] for error in state["errors"]["items"]}
        self.check(error_rows == want.error_rows, f"row errors {state['errors']}, expected {want}")
        self.say(f"  {state['status']}: {counts}")
        for error in state["errors"]["items"]:
            self.say(f"  row {error['row_number']} {error['field']}: {error['message']}")
        for key in keys.values():
            person = self.expected.people[key]
            found = admin_api.get(f"/admin/users?search={person.email}")["items"]
            self.check(len(found) == 1, f"GET /admin/users?search={person.email}: {found}")
            person.id = found[0]["id"]
        return counts

    def poll_import(self, admin_api: Client, status_path: str) -> dict[str, Any]:
        deadline = time.monotonic() + IMPORT_SECONDS
        seen = ""
        while True:
            state: dict[str, Any] = admin_api.get(status_path)
            if state["status"] != seen:
                seen = state["status"]
                self.say(f"  GET {status_path} -> {seen}")
            if state["status"] in {"completed", "failed"}:
                return state
            if time.monotonic() > deadline:
                raise self.stack.failure(f"the import is still {seen} after {IMPORT_SECONDS} s")
            if not self.stack.processes["worker"].running():
                raise self.stack.failure("the worker exited during the import")
            time.sleep(0.2)

    def set_allowance(self, admin_api: Client) -> None:
        self.step(f"The admin sets the weekly allowance to {NEW_ALLOWANCE} coins")
        company = admin_api.put(
            "/admin/company/weekly-allowance", {"weekly_renewal_amount": NEW_ALLOWANCE}
        )
        self.check(company["weekly_renewal_amount"] == NEW_ALLOWANCE, f"{company}")
        self.expected.allowance = NEW_ALLOWANCE
        self.say("  balances stay as they are until the next reset; new people get the new amount")
        self.add_user(admin_api, _person("gil", "Gil Santos"))

    def sign_in_colleagues(self) -> None:
        self.step("Each colleague gets a token with dev-token")
        for person in self.expected.people.values():
            if person.token:
                continue
            person.token = self.stack.dev_token(person.email, ttl=self.ttl)
            me = self.client(person).get("/me")
            self.check(me["id"] == person.id, f"{person.email}: GET /me -> {me}")
            self.say(f"  {person.email}: GET /me -> {me['name']} ({me['role']})")

    def send(self, sender_key: str, receiver_key: str, coins: int, message: str) -> None:
        people = self.expected.people
        sender, receiver = people[sender_key], people[receiver_key]
        api = self.client(sender)
        refused = self.expected.refusal(sender, receiver, coins)
        # The sender finds the receiver as a client would: among their colleagues.
        found = api.get(f"/colleagues?q={urllib.parse.quote(receiver.email)}")["items"]
        receiver_id = found[0]["id"] if found else receiver.id
        self.check(
            receiver_id == receiver.id and bool(found) == receiver.active,
            f"{sender.email} looking up {receiver.email}: {found}",
        )
        body = {"receiver_id": receiver_id, "coins": coins, "message": message}
        expect = {None: 201, "insufficient_balance": 409}.get(refused, 422)
        answer = api.post("/compliments", body, expect=expect)
        who = f"{sender.name} -> {receiver.name}, {coins} coins"
        if refused is None:
            self.expected.compliment(sender, receiver, coins)
            self.say(f"  {who}: 201 ({sender.name} has {sender.compliment} left to give)")
        else:
            code = answer["error"]["code"]
            self.check(code == refused, f"{who}: refused with {code}, expected {refused}")
            self.refusals.append(code)
            self.say(f"  {who}: {expect} {code} ({answer['error']['message']})")

    def send_compliments(self) -> None:
        self.step("Colleagues send compliments (POST /compliments)")
        self.send("bruno", "carla", 30, "Thanks for reviewing my migration so carefully!")
        self.send("carla", "bruno", 50, "The release went out smoothly thanks to you.")
        self.send("bruno", "davi", 60, "You fixed the flaky test everyone gave up on.")
        self.send("bruno", "elis", 20, "Great demo to the customer this morning!")  # 10 left
        self.send("elis", "fabio", 100, "Welcome aboard, and thanks for the onboarding notes.")
        self.send("fabio", "gil", 25, "Thanks for pairing with me on my first week.")

    def deactivate(self, admin_api: Client, person: Person) -> None:
        self.step(f"The admin deactivates {person.name}")
        done = admin_api.post(f"/admin/users/{person.id}/deactivate", None, expect=200)
        self.check(done["is_active"] is False, f"deactivate: {done}")
        person.active = False
        refused = self.client(person).get("/me", expect=401)
        self.check(refused["error"]["code"] == "inactive_user", f"inactive token: {refused}")
        self.say(f"  their token is refused from now on: GET /me -> 401 {refused['error']['code']}")

    def refuse_inactive_receiver(self) -> None:
        self.step("A compliment to the deactivated colleague is refused")
        self.send("carla", "davi", 10, "Thanks for everything, see you around!")

    def stay_within_one_week(self, margin: float = WEEK_BOUNDARY_MARGIN) -> None:
        """Both cron runs must fall in one period (the ISO week, from Monday 00:00 UTC):
        across the boundary the second run would be a real reset. Close to it, wait it out."""
        now = datetime.now(UTC)
        monday = datetime.combine(now.date() - timedelta(days=now.weekday()), dt_time(), UTC)
        boundary = monday + timedelta(weeks=1)
        left = (boundary - now).total_seconds()
        if left > margin:
            return
        self.say(f"  {left:.0f} s to the next week: waiting for it, so both runs share a week")
        deadline = time.monotonic() + left + 5
        while datetime.now(UTC) < boundary:
            if time.monotonic() > deadline:
                raise self.stack.failure("the clock did not reach the next week")
            time.sleep(0.2)

    def weekly_reset(self) -> None:
        self.step("The cron command runs the weekly reset, as its own process")
        want = self.expected.weekly_reset()
        started = time.monotonic()
        summary = self.stack.run_cron()
        self.seconds.setdefault("cron", time.monotonic() - started)
        got = {key: summary.get(key) for key in want}
        self.check(
            summary.get("status") == "ok" and got == want,
            f"the reset's summary {summary}, expected {want}",
        )
        self.resets.append(summary)

    def spend_after_reset(self) -> None:
        self.step("Bruno spends from his new allowance; a second run this week must not refill it")
        self.send("bruno", "carla", 40, "Thanks for covering my on-call shift on Friday.")

    # --- checking every user

    def verify(self, admin_api: Client) -> dict[str, tuple[int, int]]:
        listed = admin_api.get("/admin/users?limit=200")["items"]
        by_email = {user["email"]: user for user in listed}
        people = self.expected.people.values()
        self.check(
            set(by_email) == {p.email for p in people},
            f"GET /admin/users lists {sorted(by_email)}",
        )
        balances = {}
        for person in people:
            user = by_email[person.email]
            want_wallet = (
                {"compliment_balance": person.compliment, "redeemable_balance": person.redeemable}
                if person.has_wallet
                else None
            )
            self.check(
                user["wallet"] == want_wallet and user["is_active"] == person.active,
                f"{person.email} as the admin sees them: {user}; expected wallet {want_wallet}"
                f", active {person.active}",
            )
            wallet = user["wallet"] or {"compliment_balance": 0, "redeemable_balance": 0}
            balances[person.email] = (wallet["compliment_balance"], wallet["redeemable_balance"])
            if person.active:
                self.verify_own_view(person)
            self.say(
                f"  {person.name:<12} gives {person.compliment:>3}  received "
                f"{person.redeemable:>3}  ledger {len(person.ledger)} rows"
                f"{'' if person.active else '  (inactive)'}"
            )
        self.verify_database()
        return balances

    def verify_own_view(self, person: Person) -> None:
        api = self.client(person)
        wallet = api.get("/me/wallet")
        got = (wallet["compliment_balance"], wallet["redeemable_balance"])
        self.check(
            got == (person.compliment, person.redeemable)
            and wallet["weekly_allowance"] == self.expected.allowance,
            f"{person.email}: GET /me/wallet -> {wallet}",
        )
        page = api.get("/me/wallet/transactions?limit=200")
        ledger = [
            Entry(
                t["kind"], t["balance_type"], t["amount"], t["previous_balance"], t["new_balance"]
            )
            for t in reversed(page["items"])
        ]
        self.check(
            ledger == person.ledger and page["total"] == len(person.ledger),
            f"{person.email}'s ledger over HTTP:\n  "
            + "\n  ".join(map(str, ledger))
            + "\nexpected:\n  "
            + "\n  ".join(map(str, person.ledger)),
        )

    def verify_database(self) -> None:
        """Every ledger row, inactive users' too, and balances that equal their ledger."""
        with psycopg.connect(self.stack.database_url) as db:
            rows = db.execute(
                "SELECT u.email, t.kind, t.balance_type, t.amount, t.previous_balance,"
                " t.new_balance FROM wallet_transactions t JOIN users u ON u.id = t.user_id"
                " ORDER BY t.id"
            ).fetchall()
            mismatched = db.execute(
                "SELECT u.email, w.compliment_balance, w.redeemable_balance FROM wallets w"
                " JOIN users u ON u.id = w.user_id WHERE"
                " w.compliment_balance <> (SELECT coalesce(sum(amount), 0) FROM"
                "  wallet_transactions t WHERE t.wallet_id = w.id"
                "  AND t.balance_type = 'COMPLIMENT')"
                " OR w.redeemable_balance <> (SELECT coalesce(sum(amount), 0) FROM"
                "  wallet_transactions t WHERE t.wallet_id = w.id"
                "  AND t.balance_type = 'REDEEMABLE')"
            ).fetchall()
        self.check(not mismatched, f"balances that differ from their ledger: {mismatched}")
        for person in self.expected.people.values():
            ledger = [Entry(*row[1:]) for row in rows if row[0] == person.email]
            self.check(
                ledger == person.ledger,
                f"{person.email}'s ledger in the database:\n  "
                + "\n  ".join(map(str, ledger))
                + "\nexpected:\n  "
                + "\n  ".join(map(str, person.ledger)),
            )
