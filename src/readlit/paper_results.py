"""The READ paper's reported numbers (``eval/paper/table<n>.yaml``) as plain dicts, to set beside readlit's results.

    >>> paper_table(1)["rows"]["hdtf"]["Ours"]["sync_c"]
    8.658

Each table holds ``caption``, ``columns`` (result key -> printed header and direction) and ``rows``: Table 1 by
dataset, then method; Table 2 by configuration; Table 3 by frame count; Table 4 by method. Result keys are the
ones :mod:`readlit.evaluate` writes (``fid``, ``sync_c``, ``runtime`` ...); row names are as the paper prints
them ("Ours" is READ).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from readlit.errors import ConfigError
from readlit.resolvers import PROJECT_ROOT

PAPER_DIR = PROJECT_ROOT / "eval" / "paper"


def paper_table(number: int, paper_dir: Path = PAPER_DIR) -> dict[str, Any]:
    """Table ``number`` of the paper as printed (numbers, not their bold/underline marks)."""
    path = paper_dir / f"table{number}.yaml"
    if not path.is_file():
        known = sorted(int(p.stem.removeprefix("table")) for p in paper_dir.glob("table*.yaml"))
        raise ConfigError(f"the paper has no table {number} in {paper_dir}; known: {known}")
    return yaml.safe_load(path.read_text())


def paper_tables(paper_dir: Path = PAPER_DIR) -> dict[int, dict[str, Any]]:
    """Every table of ``paper_dir``, by number."""
    tables = (yaml.safe_load(path.read_text()) for path in sorted(paper_dir.glob("table*.yaml")))
    return {table["table"]: table for table in tables}
