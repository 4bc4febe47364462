"""OmegaConf resolvers used by readlit's configs (registered when readlit is imported)."""

from pathlib import Path

from omegaconf import OmegaConf

# The repository root (the folder holding conf/); runs and data default to folders under it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def register() -> None:
    """``${mul:a,b}`` = a·b (e.g. Whisper tokens × hidden states); ``${project_root:}`` = PROJECT_ROOT."""
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda a, b: a * b)
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
