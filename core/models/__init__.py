"""SQLModel tables; importing this package registers every table on `SQLModel.metadata`."""

from core.models.agent import Agent, AgentCreate, AgentPublic, AgentUpdate
from core.models.provider import (
    ConnectionStatus,
    Provider,
    ProviderCreate,
    ProviderKind,
    ProviderPublic,
    ProviderUpdate,
)

__all__ = [
    "Agent",
    "AgentCreate",
    "AgentPublic",
    "AgentUpdate",
    "ConnectionStatus",
    "Provider",
    "ProviderCreate",
    "ProviderKind",
    "ProviderPublic",
    "ProviderUpdate",
]
