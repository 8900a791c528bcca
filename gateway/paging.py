"""Page-size caps for list routes: ``page_size: PageSize`` in a route's parameters.

The schema allows up to :data:`HARD_MAX_PAGE_SIZE`; ``MAX_PAGE_SIZE`` (settings) may cap
it lower per deployment, refused with a validation problem naming the cap.
"""

from typing import Annotated

from fastapi import Depends, Query

from gateway import problems
from gateway.resources import Resources

HARD_MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


async def capped_page_size(
    resources: Resources,
    page_size: Annotated[
        int, Query(ge=1, le=HARD_MAX_PAGE_SIZE, description="items per page (capped by MAX_PAGE_SIZE, default 200)")
    ] = DEFAULT_PAGE_SIZE,
) -> int:
    cap = resources.settings.max_page_size
    if page_size > cap:
        error = {"location": "query.page_size", "message": f"at most {cap}", "type": "less_than_equal"}
        raise problems.ProblemError(
            problems.VALIDATION_ERROR, f"page_size may be at most {cap}", extensions={"errors": [error]}
        )
    return page_size


PageSize = Annotated[int, Depends(capped_page_size)]
