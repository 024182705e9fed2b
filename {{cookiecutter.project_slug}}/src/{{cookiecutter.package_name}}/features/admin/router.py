"""Admin endpoints, all scoped to the caller's own company (never one from the request)."""

from fastapi import APIRouter

{% if cookiecutter.examples == "none" %}from ..user_export.router import router as user_export_router
{% endif %}from .company.router import router as company_router
{%- if cookiecutter.examples == "kudos" %}
from .jobs.router import router as jobs_router
{%- endif %}
from .users.router import router as users_router

router = APIRouter(prefix="/admin")
router.include_router(users_router)
router.include_router(company_router)
{%- if cookiecutter.examples == "kudos" %}
router.include_router(jobs_router)
{%- else %}
router.include_router(user_export_router)
{%- endif %}
