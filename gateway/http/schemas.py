"""What every HTTP request model of the gateway shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A request body that refuses fields it does not declare (422), so a misspelt field is never ignored."""

    model_config = ConfigDict(extra="forbid")
