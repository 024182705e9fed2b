"""What each role may do. The map lives in code: one place to read, reviewed like code."""

from enum import StrEnum

from .models import Role


class Permission(StrEnum):
    read_self = "self:read"
{%- if cookiecutter.examples == "kudos" %}
    send_compliments = "compliments:send"
{%- endif %}
{%- if cookiecutter.examples == "kudos" %}
    list_colleagues = "colleagues:read"
{%- endif %}
    manage_users = "users:manage"
{%- if cookiecutter.examples == "kudos" %}
    import_users = "users:import"
{%- else %}
    export_users = "users:export"
{%- endif %}
    manage_company = "company:manage"
    # Which email domains are the company's, so which people it can add: the owners'
    # call. In this template the admins are the owners; a project with an owner role
    # gives this one to that role only.
    manage_domains = "company:domains"
{%- if cookiecutter.examples == "kudos" %}
    reset_balances = "wallets:reset"
    send_announcements = "announcements:send"
{%- endif %}
{%- if cookiecutter.examples == "kudos" %}


_EMPLOYEE = frozenset(
    {Permission.read_self, Permission.send_compliments, Permission.list_colleagues}
)
{%- else %}


_EMPLOYEE = frozenset({Permission.read_self})
{%- endif %}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.employee: _EMPLOYEE,
    # Admins act on their own company only: every query is scoped to the caller's company.
    Role.admin: _EMPLOYEE
    | {
        Permission.manage_users,
{%- if cookiecutter.examples == "kudos" %}
        Permission.import_users,
{%- else %}
        Permission.export_users,
{%- endif %}
        Permission.manage_company,
        Permission.manage_domains,
{%- if cookiecutter.examples == "kudos" %}
        Permission.reset_balances,
        Permission.send_announcements,
{%- endif %}
    },
}


def has_permission(role: Role | str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
