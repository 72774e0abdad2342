"""Public, secret-free configuration a front end needs."""

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import SettingsDep

router = APIRouter(prefix="/api/v1", tags=["config"])


class PublicConfig(BaseModel):
    environment: str
    temporal_namespace: str
    task_queue: str
    temporal_web_ui: str
    telegram_bot_enabled: bool


@router.get("/config")
async def get_config(settings: SettingsDep) -> PublicConfig:
    """Where the Web UI is and which queue and namespace runs go to."""
    return PublicConfig(
        environment=settings.environment,
        temporal_namespace=settings.temporal_namespace,
        task_queue=settings.task_queue,
        temporal_web_ui=settings.web_ui_url,
        telegram_bot_enabled=settings.telegram_bot_token is not None,
    )
