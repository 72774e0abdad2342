"""SQLModel tables; importing this package registers every table on `SQLModel.metadata`."""

from core.models.agent import Agent, AgentCreate, AgentPublic, AgentUpdate
from core.models.artifact import Artifact, ArtifactPublic
from core.models.dag import Dag, DagCreate, DagPublic, DagUpdate
from core.models.dag_event import DagEventRecord
from core.models.dag_final_state import DagFinalState
from core.models.goal import Goal, GoalCreate, GoalPublic, GoalStatus, GoalUpdate, RunUsage
from core.models.live_event import LiveEvent
from core.models.mcp_server import McpServer, McpServerCreate, McpServerPublic, McpServerUpdate
from core.models.memory import Memory, MemoryCreate, MemoryPublic
from core.models.message import Message, MessageCreate, MessagePublic, MessageStatus
from core.models.payload_blob import PayloadBlob, PayloadBlobLink
from core.models.provider import (
    ConnectionStatus,
    Provider,
    ProviderCreate,
    ProviderKind,
    ProviderPublic,
    ProviderUpdate,
)
from core.models.side_effect import SideEffect, SideEffectStatus
from core.models.telegram import TelegramApproval, TelegramProgress, TelegramUpdate, TelegramWatch
from core.models.todo import TaskStatus, TodoTask, TodoTaskCreate, TodoTaskPublic, TodoTaskStatusUpdate

__all__ = [
    "Agent",
    "AgentCreate",
    "AgentPublic",
    "AgentUpdate",
    "Artifact",
    "ArtifactPublic",
    "ConnectionStatus",
    "Dag",
    "DagCreate",
    "DagEventRecord",
    "DagFinalState",
    "DagPublic",
    "DagUpdate",
    "Goal",
    "GoalCreate",
    "GoalPublic",
    "GoalStatus",
    "GoalUpdate",
    "LiveEvent",
    "McpServer",
    "McpServerCreate",
    "McpServerPublic",
    "McpServerUpdate",
    "Memory",
    "MemoryCreate",
    "MemoryPublic",
    "Message",
    "MessageCreate",
    "MessagePublic",
    "MessageStatus",
    "PayloadBlob",
    "PayloadBlobLink",
    "Provider",
    "ProviderCreate",
    "ProviderKind",
    "ProviderPublic",
    "ProviderUpdate",
    "RunUsage",
    "SideEffect",
    "SideEffectStatus",
    "TaskStatus",
    "TelegramApproval",
    "TelegramProgress",
    "TelegramUpdate",
    "TelegramWatch",
    "TodoTask",
    "TodoTaskCreate",
    "TodoTaskPublic",
    "TodoTaskStatusUpdate",
]
