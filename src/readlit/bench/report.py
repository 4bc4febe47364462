"""One benchmark's result: a table of measures with their goals, the machine it ran on, written as JSON and Markdown.

Every ratio in a table is measured side by side in one run (the candidates interleaved, :mod:`readlit.bench.timing`),
because a shared machine's speed drifts between runs; absolute seconds mean something only on a dedicated GPU.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from readlit.resolvers import PROJECT_ROOT
from readlit.utils.atomic import atomic_write_text


@dataclass
class Row:
    """One measure: its value, unit, the goal it is held against (a phrase, e.g. ``>= 1.5``) and a note."""

    measure: str
    value: float | str | None
    unit: str = ""
    goal: str = ""
    note: str = ""


@dataclass
class Report:
    """A benchmark's rows, its settings and the machine, written to ``<out>/<name>.json`` and ``<name>.md``."""

    name: str
    title: str
    settings: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=lambda: machine_facts())
    rows: list[Row] = field(default_factory=list)

    def add(self, measure: str, value: float | str | None, unit: str = "", goal: str = "", note: str = "") -> Row:
        row = Row(measure, value, unit, goal, note)
        self.rows.append(row)
        return row

    def value(self, measure: str) -> float | str | None:
        """The value of the row named ``measure`` (KeyError if there is none)."""
        for row in self.rows:
            if row.measure == measure:
                return row.value
        raise KeyError(measure)

    def finish(self) -> Report:
        """Record the load at the end of the run (the start's is taken when the report is made)."""
        self.machine["load_end"] = load_average()
        return self

    def markdown(self) -> str:
        """The table, with the settings and the machine underneath."""
        lines = [f"### {self.title}", "", "| measure | value | goal | note |", "|---|---|---|---|"]
        for row in self.rows:
            lines.append(f"| {row.measure} | {format_value(row.value, row.unit)} | {row.goal} | {row.note} |")
        settings = ", ".join(f"{key}={value}" for key, value in self.settings.items())
        machine = ", ".join(f"{key}: {value}" for key, value in self.machine.items())
        return "\n".join([*lines, "", f"Settings: {settings}.", "", f"Machine: {machine}.", ""])

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "settings": self.settings, "machine": self.machine,
                "rows": [asdict(row) for row in self.rows]}

    def write(self, out: str | Path) -> tuple[Path, Path]:
        """``<out>/<name>.json`` and ``<out>/<name>.md``, each written whole or not at all."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        json_path, md_path = folder / f"{self.name}.json", folder / f"{self.name}.md"
        atomic_write_text(json_path, json.dumps(self.to_json(), indent=1) + "\n")
        atomic_write_text(md_path, self.markdown())
        return json_path, md_path


def format_value(value: float | str | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if unit == "x":
        return f"{value:.2f}x"
    if abs(value) >= 100 or value == 0:
        number = f"{value:,.0f}"
    elif abs(value) >= 1:
        number = f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    else:
        number = f"{value:.3g}"
    return f"{number} {unit}".strip()


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def machine_facts() -> dict[str, Any]:
    """What the numbers depend on: processor or GPU, threads, versions, commit, time and load."""
    facts: dict[str, Any] = {"utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                             "torch": torch.__version__, "python": platform.python_version(),
                             "cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                             "commit": git_commit()}
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name()
        facts["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    facts["load_start"] = load_average()
    return facts


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
