"""Tools: the registry (`registry.py`), the shared wrapper (`base.py`), one module per tool group,
and the pydantic-ai toolset agents use (`toolset.py`)."""
