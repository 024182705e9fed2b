"""Every table, imported in one place so Alembic sees the whole schema."""

from .features.companies.models import Company, CompanyDomain
{%- if cookiecutter.examples == "kudos" %}
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
{%- else %}
from .features.user_export.models import ExportStatus, UserExport
from .features.users.models import Role, User
{%- endif %}
{%- if cookiecutter.examples == "kudos" %}

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
{%- else %}

__all__ = [
    "Company",
    "CompanyDomain",
    "ExportStatus",
    "Role",
    "User",
    "UserExport",
]
{%- endif %}
