from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from .models import COINS_STEP, MAX_COINS, MAX_MESSAGE_LENGTH, MIN_COINS, MIN_MESSAGE_LENGTH


def _without_nul(value: str) -> str:
    # Postgres text cannot hold NUL: refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class SendCompliment(BaseModel):
    """A compliment to a colleague. The sender and company are the caller's."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "receiver_id": "8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c",
                    "coins": 15,
                    "message": "Thanks for staying late to get the release out!",
                }
            ]
        },
    )

    receiver_id: UUID = Field(description="The colleague to compliment (see GET /colleagues)")
    # Strict: a JSON integer, not "10" nor true.
    coins: int = Field(
        strict=True,
        ge=MIN_COINS,
        le=MAX_COINS,
        multiple_of=COINS_STEP,
        description=f"{MIN_COINS} to {MAX_COINS}, in steps of {COINS_STEP}",
    )
    message: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=MIN_MESSAGE_LENGTH, max_length=MAX_MESSAGE_LENGTH
        ),
        AfterValidator(_without_nul),
    ] = Field(
        description=f"{MIN_MESSAGE_LENGTH} to {MAX_MESSAGE_LENGTH} characters, "
        "leading and trailing spaces not counted"
    )


class Person(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str


class ComplimentOut(BaseModel):
    """A compliment, as its sender and receiver see it."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "5b0e8a52-6f0c-4a63-9d8e-2b7f6f3c1a90",
                    "sender": {"id": "7d1c1a7e-4a8e-4c47-9d7e-1f0a3c2b5e61", "name": "Ana Souza"},
                    "receiver": {
                        "id": "8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c",
                        "name": "Bruno Lima",
                    },
                    "coins": 15,
                    "message": "Thanks for staying late to get the release out!",
                    "created_at": "2026-11-24T14:03:11.482Z",
                }
            ]
        },
    )

    id: UUID
    sender: Person
    receiver: Person
    coins: int
    message: str
    created_at: datetime


class Colleague(BaseModel):
    """An active user of the caller's company: someone the caller can compliment."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c",
                    "name": "Bruno Lima",
                    "email": "bruno@acme.example",
                    "department": "Engineering",
                    "job_title": "Backend developer",
                }
            ]
        },
    )

    id: UUID
    name: str
    email: str
    department: str | None
    job_title: str | None
