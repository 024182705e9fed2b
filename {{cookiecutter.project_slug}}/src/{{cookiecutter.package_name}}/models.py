"""Every table, imported in one place so Alembic sees the whole schema."""

from .features.companies.models import Company
from .features.compliments.models import Compliment
from .features.users.models import Role, User
from .features.wallets.models import (
    BalanceType,
    TransactionKind,
    Wallet,
    WalletTransaction,
    WeeklyResetRun,
)

__all__ = [
    "BalanceType",
    "Company",
    "Compliment",
    "Role",
    "TransactionKind",
    "User",
    "Wallet",
    "WalletTransaction",
    "WeeklyResetRun",
]
