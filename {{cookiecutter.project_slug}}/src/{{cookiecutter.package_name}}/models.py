"""Every table, imported in one place so Alembic sees the whole schema."""

from .features.admin.users.import_models import (
    CsvImport,
    CsvImportChunk,
    CsvImportError,
    ImportStatus,
)
from .features.companies.models import Company, CompanyDomain
from .features.compliments.models import Compliment, ComplimentIdempotencyKey
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
    "CompanyDomain",
    "Compliment",
    "ComplimentIdempotencyKey",
    "CsvImport",
    "CsvImportChunk",
    "CsvImportError",
    "ImportStatus",
    "Role",
    "TransactionKind",
    "User",
    "Wallet",
    "WalletTransaction",
    "WeeklyResetRun",
]
