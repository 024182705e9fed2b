"""Admin endpoints, all scoped to the caller's own company (never one from the request)."""

from fastapi import APIRouter

from .company.router import router as company_router
from .jobs.router import router as jobs_router
from .users.router import router as users_router

router = APIRouter(prefix="/admin")
router.include_router(users_router)
router.include_router(company_router)
router.include_router(jobs_router)
