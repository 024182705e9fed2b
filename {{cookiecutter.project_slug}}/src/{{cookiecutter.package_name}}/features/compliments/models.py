"""Compliments: coins one person sends another of the same company, with a message."""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import CheckConstraint, Column, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from ...lib.models import timestamp_field

MIN_COINS = 5
MAX_COINS = 100
COINS_STEP = 5
MIN_MESSAGE_LENGTH = 10
MAX_MESSAGE_LENGTH = 280
# An `Idempotency-Key` header: at most this many characters (Stripe's limit), printable
# ASCII without leading or trailing spaces (a UUID, a token, or the IETF draft's quoted
# string, kept as sent).
IDEMPOTENCY_KEY_MAX_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"


class Compliment(SQLModel, table=True):
    __tablename__ = "compliments"
    # The rules hold in the database too, whatever the code above it does. That sender
    # and receiver share `company_id` is checked by the service, which reads both rows.
    __table_args__ = (
        CheckConstraint(
            # mod(), not %: a % would need escaping in migrations and offline SQL.
            f"coins BETWEEN {MIN_COINS} AND {MAX_COINS} AND mod(coins, {COINS_STEP}) = 0",
            name="coins_valid",
        ),
        CheckConstraint(
            f"char_length(message) BETWEEN {MIN_MESSAGE_LENGTH} AND {MAX_MESSAGE_LENGTH}",
            name="message_length",
        ),
        CheckConstraint("sender_id <> receiver_id", name="not_to_self"),
        Index("ix_compliments_sender_id_created_at", "sender_id", "created_at"),
        Index("ix_compliments_receiver_id_created_at", "receiver_id", "created_at"),
    )

    id: UUID = Field(
        default_factory=uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    company_id: UUID = Field(foreign_key="companies.id", index=True)
    sender_id: UUID = Field(foreign_key="users.id")
    receiver_id: UUID = Field(foreign_key="users.id")
    coins: int
    message: str = Field(sa_type=Text)
    created_at: datetime | None = timestamp_field()


class ComplimentIdempotencyKey(SQLModel, table=True):
    """A sender's `Idempotency-Key`, committed in the transaction of the compliment it made.

    The primary key is what makes concurrent retries wait for the first one: their
    `INSERT ... ON CONFLICT DO NOTHING` blocks on its uncommitted row, then finds it
    committed (replay) or gone (the first failed: run again). Only a sent compliment is
    kept, so `compliment_id` and `response` are set in that same transaction.
    """

    __tablename__ = "compliment_idempotency_keys"
    __table_args__ = (Index("ix_compliment_idempotency_keys_created_at", "created_at"),)

    sender_id: UUID = Field(foreign_key="users.id", primary_key=True)
    key: str = Field(max_length=IDEMPOTENCY_KEY_MAX_LENGTH, primary_key=True)
    # sha256 (hex) of the validated body: the same key with another body is refused.
    fingerprint: str = Field(sa_type=String(64))
    compliment_id: UUID | None = Field(default=None, foreign_key="compliments.id")
    # The first answer's body, replayed as it was.
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    created_at: datetime | None = timestamp_field()
