"""One way to page through lists: `?limit=&offset=`, answered as a `Page`."""

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

MAX_LIMIT = 200
# Postgres reads and drops every skipped row: past this, narrow the list with its filters.
MAX_OFFSET = 10_000
T = TypeVar("T")


class PageParams(BaseModel):
    limit: int
    offset: int


# `async`, like every dependency here: FastAPI runs a plain `def` one in a thread, a
# hop that costs more than the function.
async def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = 50,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="Items to skip (at most 10,000)")
    ] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageQuery = Annotated[PageParams, Depends(_page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
