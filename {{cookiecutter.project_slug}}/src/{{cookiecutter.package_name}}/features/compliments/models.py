"""Compliments: coins one person sends another of the same company, with a message."""

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import CheckConstraint, Index, Text, text
from sqlmodel import Field, SQLModel

from ...lib.models import timestamp_field

MIN_COINS = 5
MAX_COINS = 100
COINS_STEP = 5
MIN_MESSAGE_LENGTH = 10
MAX_MESSAGE_LENGTH = 280


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
