"""The domain rules, modelled on their own: what each step of the story must lead to.

Nothing here is read back from the project; the story compares what the api and the
database say with what `Expected` predicts.
"""

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    """One ledger row: (kind, balance, signed amount, previous balance, new balance)."""

    kind: str
    balance: str
    amount: int
    previous: int
    new: int

    def __str__(self) -> str:
        return f"{self.kind} {self.balance} {self.amount:+d} ({self.previous} -> {self.new})"


@dataclass
class Person:
    key: str
    name: str
    email: str
    role: str = "employee"
    active: bool = True
    has_wallet: bool = False
    compliment: int = 0
    redeemable: int = 0
    ledger: list[Entry] = field(default_factory=list)
    id: str = ""
    token: str = ""

    def change(self, kind: str, balance: str, amount: int) -> None:
        self.has_wallet = True
        previous = self.compliment if balance == "COMPLIMENT" else self.redeemable
        new = previous + amount
        assert new >= 0, f"{self.key}: {balance} would go below zero"
        if balance == "COMPLIMENT":
            self.compliment = new
        else:
            self.redeemable = new
        self.ledger.append(Entry(kind, balance, amount, previous, new))


# A well-formed address, as the import checks it: no spaces, one @, a dotted domain.
EMAIL = re.compile(r"^[^@\s,;<>()\[\]\"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+$")


@dataclass(frozen=True)
class ImportExpectation:
    rows: int
    created: int
    skipped: int
    deactivated: int
    invalid: int
    error_rows: frozenset[int]


class Expected:
    """The state the domain rules give for the story's steps, computed on its own.

    - A user an admin adds (one by one or from a CSV) or `dev-token` creates gets a
      wallet holding the company's current weekly allowance: one RESET ledger row from 0.
    - Changing the allowance changes no balance; it applies from the next reset and to
      users added from then on.
    - A compliment of c coins from s to r: refused when r is not an active user of the
      company (or is s), or when s's compliment balance is below c (nothing changes);
      else s's compliment balance -c (DEBIT) and r's redeemable balance +c (CREDIT).
    - The weekly reset, once per company and week: every active user gets a wallet and
      a compliment balance *set* to the allowance, one RESET row where it changed;
      redeemable balances and inactive users are untouched. Again in the same week:
      nothing.
    - The CSV import: a row needs a name of 2+ characters and a well-formed email; an
      email repeated in the file is invalid after its first row; an existing user's
      email is skipped (counted as deactivated, and a row error, when that user is
      deactivated); the header is row 1.
    """

    def __init__(self, allowance: int) -> None:
        self.allowance = allowance
        self.people: dict[str, Person] = {}
        self.reset_this_week = False

    def by_email(self, email: str) -> Person | None:
        return next((p for p in self.people.values() if p.email == email.lower()), None)

    def added(self, person: Person) -> None:
        self.people[person.key] = person
        person.change("RESET", "COMPLIMENT", self.allowance)

    def imported(self, rows: list[tuple[str, str]], keys: dict[str, str]) -> ImportExpectation:
        seen: set[str] = set()
        created = skipped = deactivated = 0
        error_rows: set[int] = set()
        for number, (name, email) in enumerate(rows, start=2):
            email = email.strip().lower()
            if len(name.strip()) < 2 or not EMAIL.fullmatch(email) or email in seen:
                error_rows.add(number)
                continue
            seen.add(email)
            if (existing := self.by_email(email)) is not None:
                if existing.active:
                    skipped += 1
                else:
                    deactivated += 1
                    error_rows.add(number)
                continue
            self.added(Person(keys[email], name.strip(), email))
            created += 1
        return ImportExpectation(
            len(rows),
            created,
            skipped,
            deactivated,
            len(error_rows) - deactivated,
            frozenset(error_rows),
        )

    def refusal(self, sender: Person, receiver: Person, coins: int) -> str | None:
        """Why this compliment is refused (its error code), or None when it goes through."""
        if receiver is sender:
            return "self_compliment"
        if not receiver.active:
            return "receiver_inactive"
        if sender.compliment < coins:
            return "insufficient_balance"
        return None

    def compliment(self, sender: Person, receiver: Person, coins: int) -> str | None:
        refused = self.refusal(sender, receiver, coins)
        if refused is None:
            sender.change("DEBIT", "COMPLIMENT", -coins)
            receiver.change("CREDIT", "REDEEMABLE", coins)
        return refused

    def weekly_reset(self) -> dict[str, int]:
        if self.reset_this_week:
            return {
                "companies": 0,
                "companies_already_reset": 1,
                "wallets_created": 0,
                "wallets_reset": 0,
                "ledger_rows": 0,
            }
        self.reset_this_week = True
        created = changed = 0
        for person in self.people.values():
            if not person.active:
                continue
            if not person.has_wallet:
                person.has_wallet = True
                created += 1
            if person.compliment != self.allowance:
                person.change("RESET", "COMPLIMENT", self.allowance - person.compliment)
                changed += 1
        return {
            "companies": 1,
            "companies_already_reset": 0,
            "wallets_created": created,
            "wallets_reset": changed,
            "ledger_rows": changed,
        }
