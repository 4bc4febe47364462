"""OmegaConf resolvers used by readlit's configs (registered when readlit is imported)."""

from pathlib import Path

from omegaconf import OmegaConf

# The repository root (the folder holding conf/); runs and data default to folders under it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def unique_dir(path: str) -> str:
    """``path``, else ``path_1``, ``path_2`` ...: the first of them that did not exist, created now.

    Run folders are named by the second a run starts; two runs started in the same second must not share one
    (their configs, checkpoints and metrics would overwrite each other). ``mkdir`` fails on an existing folder
    atomically, so of two runs racing for a name exactly one gets it.
    """
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, number = base, 0
    while True:
        try:
            candidate.mkdir()
            return str(candidate)
        except FileExistsError:
            number += 1
            candidate = base.with_name(f"{base.name}_{number}")


def register() -> None:
    """``${mul:a,b}`` = a·b (e.g. Whisper tokens × hidden states); ``${project_root:}`` = PROJECT_ROOT;
    ``${unique_dir:path}`` = :func:`unique_dir` (resolved once per config: the cache keeps a run in one folder)."""
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda a, b: a * b)
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
