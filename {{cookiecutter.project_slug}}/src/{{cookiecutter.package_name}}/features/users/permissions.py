"""What each role may do. The map lives in code: one place to read, reviewed like code."""

from enum import StrEnum

from .models import Role


class Permission(StrEnum):
    read_self = "self:read"
    send_compliments = "compliments:send"
    list_colleagues = "colleagues:read"
    manage_users = "users:manage"
    import_users = "users:import"
    manage_company = "company:manage"
    # Which email domains are the company's, so which people it can add: the owners'
    # call. In this template the admins are the owners; a project with an owner role
    # gives this one to that role only.
    manage_domains = "company:domains"
    reset_balances = "wallets:reset"
    send_announcements = "announcements:send"


_EMPLOYEE = frozenset(
    {Permission.read_self, Permission.send_compliments, Permission.list_colleagues}
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.employee: _EMPLOYEE,
    # Admins act on their own company only: every query is scoped to the caller's company.
    Role.admin: _EMPLOYEE
    | {
        Permission.manage_users,
        Permission.import_users,
        Permission.manage_company,
        Permission.manage_domains,
        Permission.reset_balances,
        Permission.send_announcements,
    },
}


def has_permission(role: Role | str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
