from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from .models import BalanceType, TransactionKind


class WalletBalances(BaseModel):
    """The signed-in user's two balances (both 0 before their first wallet exists)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "compliment_balance": 65,
                    "redeemable_balance": 240,
                    "weekly_allowance": 100,
                    "updated_at": "2026-11-24T14:03:11.482Z",
                }
            ]
        }
    )

    compliment_balance: int
    redeemable_balance: int
    weekly_allowance: int
    updated_at: datetime | None


class Transaction(BaseModel):
    """One ledger row: a change of one balance, with the balance before and after."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 4182,
                    "kind": "DEBIT",
                    "balance_type": "COMPLIMENT",
                    "amount": -15,
                    "previous_balance": 80,
                    "new_balance": 65,
                    "reason": "Compliment sent",
                    "metadata": {
                        "compliment_id": "5b0e8a52-6f0c-4a63-9d8e-2b7f6f3c1a90",
                        "receiver_id": "8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c",
                    },
                    "created_at": "2026-11-24T14:03:11.482Z",
                }
            ]
        },
    )

    id: int
    kind: TransactionKind
    balance_type: BalanceType
    amount: int
    previous_balance: int
    new_balance: int
    reason: str
    # Read from the model's `meta` attribute (SQLModel reserves `metadata`).
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("meta", "metadata"))
    created_at: datetime
