"""Every table, imported in one place so Alembic sees the whole schema."""

from .features.companies.models import Company, CompanyDomain
from .features.compliments.models import Compliment, ComplimentIdempotencyKey
from .features.mail.models import Announcement, MailKind, MailMessage, MailStatus
from .features.user_import.models import (
    CsvImport,
    CsvImportChunk,
    CsvImportError,
    ImportStatus,
)
from .features.users.models import Role, User
from .features.wallets.models import (
    BalanceType,
    TransactionKind,
    Wallet,
    WalletTransaction,
    WeeklyResetRun,
)

__all__ = [
    "Announcement",
    "BalanceType",
    "Company",
    "CompanyDomain",
    "Compliment",
    "ComplimentIdempotencyKey",
    "CsvImport",
    "CsvImportChunk",
    "CsvImportError",
    "ImportStatus",
    "MailKind",
    "MailMessage",
    "MailStatus",
    "Role",
    "TransactionKind",
    "User",
    "Wallet",
    "WalletTransaction",
    "WeeklyResetRun",
]
