"""What a provider check answers, shared by the validation activity and the providers service."""

from pydantic import BaseModel


class ProviderCheck(BaseModel):
    """Outcome of one validation: the models the endpoint serves, or why it failed."""

    ok: bool
    models: list[str] = []
    error: str | None = None
