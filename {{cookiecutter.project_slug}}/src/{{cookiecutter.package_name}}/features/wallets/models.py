"""Wallets, their append-only ledger, and the record of weekly reset runs."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Identity, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel, UniqueConstraint

from ...lib.models import timestamp_field


class TransactionKind(StrEnum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"
    RESET = "RESET"


class BalanceType(StrEnum):
    COMPLIMENT = "COMPLIMENT"
    REDEEMABLE = "REDEEMABLE"


class Wallet(SQLModel, table=True):
    __tablename__ = "wallets"
    # Balances can never go negative, whatever the code above does.
    __table_args__ = (
        CheckConstraint("compliment_balance >= 0", name="compliment_balance_not_negative"),
        CheckConstraint("redeemable_balance >= 0", name="redeemable_balance_not_negative"),
    )

    id: UUID = Field(
        default_factory=uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    user_id: UUID = Field(foreign_key="users.id", unique=True)
    compliment_balance: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    redeemable_balance: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    # The period (ISO week) of the weekly reset that last set this wallet, written by the
    # statement that resets it: a run resumed mid-company never resets a wallet twice.
    reset_period: date | None = None
    created_at: datetime | None = timestamp_field()
    updated_at: datetime | None = timestamp_field()


class WalletTransaction(SQLModel, table=True):
    """One row per balance change, written in the same transaction as the change."""

    __tablename__ = "wallet_transactions"
    __table_args__ = (
        CheckConstraint("kind IN ('DEBIT', 'CREDIT', 'RESET')", name="kind_known"),
        CheckConstraint("balance_type IN ('COMPLIMENT', 'REDEEMABLE')", name="balance_type_known"),
        CheckConstraint("new_balance = previous_balance + amount", name="amount_adds_up"),
        Index("ix_wallet_transactions_wallet_id_created_at", "wallet_id", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    # No foreign key: a per-statement trigger checks that each row's wallet exists and
    # belongs to user_id, and wallets are never deleted (migration 0010_reset_speed); the
    # key's per-row check and lock cost the weekly reset about a quarter of its time.
    wallet_id: UUID
    # The wallet's owner, copied so per-user queries need no join. No foreign key: the
    # wallet's own key already ties the row to a real user (wallets.user_id), and a
    # second per-row check cost the weekly reset about a quarter of its time (5 s of 20
    # on a million wallets; bench/weekly_reset.py).
    user_id: UUID
    kind: TransactionKind = Field(sa_type=String(10))
    balance_type: BalanceType = Field(sa_type=String(12))
    amount: int
    previous_balance: int
    new_balance: int
    reason: str = Field(max_length=200)
    # The column is called `metadata`, a name SQLModel reserves for the attribute.
    meta: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    created_at: datetime | None = timestamp_field()


class WeeklyResetRun(SQLModel, table=True):
    """One row per company and period: claimed when a run starts the company, completed
    when all its wallets are reset. An incomplete one is what the next run continues."""

    __tablename__ = "weekly_reset_runs"
    __table_args__ = (UniqueConstraint("company_id", "period_start"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    run_id: UUID = Field(index=True)
    company_id: UUID = Field(foreign_key="companies.id")
    period_start: date
    allowance: int
    wallets_reset: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    created_at: datetime | None = timestamp_field()
    completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
