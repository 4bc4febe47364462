"""Evaluation results as JSON and as a Markdown table with the paper's Table 1 columns (missing metrics marked)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from readlit.utils.atomic import atomic_write_text

# (result key, column header, digits); the first six are Table 1's, the rest readlit's extras.
COLUMNS = (
    ("fid", "FID ↓", 3), ("fvd", "FVD ↓", 3), ("sync_c", "Sync-C ↑", 3), ("sync_d", "Sync-D ↓", 3),
    ("e_fid", "E-FID ↓", 3), ("runtime", "Runtime (s) ↓", 2), ("psnr", "PSNR ↑", 2), ("ssim", "SSIM ↑", 3),
    ("lpips", "LPIPS ↓", 3), ("mouth_sync", "Mouth-sync ↑", 3),
)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as the string "inf", "-inf" or "nan": JSON has no such numbers
    (PSNR of identical videos is infinite), and a file with ``Infinity`` in it is not JSON."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _cell(results: dict[str, Any], key: str, digits: int) -> str:
    value = results["metrics"].get(key)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is not None:
        return f"{value:.{digits}f}"
    return "missing" if key in results["missing"] else "—"


def markdown(results: dict[str, Any]) -> str:
    """The table, then one line per missing metric saying why."""
    header = "| Method | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "---|" * (len(COLUMNS) + 1)
    row = f"| {results['method']} | " + " | ".join(_cell(results, k, d) for k, _, d in COLUMNS) + " |"
    lines = [f"# {results['dataset']}: {results['videos']} videos", "", header, rule, row, ""]
    lines += [f"- {name}: missing — {why}" for name, why in sorted(results["missing"].items())]
    lines += [f"- {name}: {value}" for name, value in sorted(results["protocol"].items())]
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out`` (each whole or not at all)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe(results), indent=2, sort_keys=True, allow_nan=False)
    atomic_write_text(out / "results.json", text + "\n")
    atomic_write_text(out / "results.md", markdown(results))
    return out / "results.json", out / "results.md"
