"""Evaluation results as JSON and as Markdown: the paper's Table 1 columns, then the paper's own rows beside ours.

The second table sets our row beside the rows of one of the paper's tables (``eval/paper/table<n>.yaml``,
:mod:`readlit.paper_results`), in the columns both have. On the paper's dataset every row is shown; on another
dataset (synthetic) READ's, Sonic's and Ditto's rows of each paper dataset are shown for reference only, marked
as numbers on that dataset, which do not compare with ours.
"""

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
DATASETS = {"hdtf": "HDTF", "mead": "MEAD"}
# The paper calls READ "Ours"; beside readlit's row it is READ. Off the paper's data: the rows set for reference.
PAPER_NAMES = {"Ours": "READ"}
REFERENCE_METHODS = ("Ours", "Sonic", "Ditto")


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


def _row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def _table(columns: list[tuple[str, str, int]], rows: list[str]) -> list[str]:
    return ["| Method | " + " | ".join(title for _, title, _ in columns) + " |", "|" + "---|" * (len(columns) + 1),
            *rows]


def paper_rows(table: dict[str, Any], dataset: str) -> tuple[list[tuple[str, dict[str, float]]], list[str]]:
    """The paper's rows to set beside a result on ``dataset`` (label, values), and the datasets they are on.

    Table 1 has rows per dataset: all of ``dataset``'s, else READ, Sonic and Ditto of each. Tables 2 and 3 hold one
    dataset (``table["dataset"]``); Table 3's rows are lengths, labelled READ at that many frames.
    """
    rows = table["rows"]
    if table["table"] == 1:
        if dataset in rows:
            return [(f"{PAPER_NAMES.get(name, name)} (paper)", values) for name, values in rows[dataset].items()], \
                [dataset]
        return [(f"{PAPER_NAMES.get(name, name)} (paper, {DATASETS[where]})", rows[where][name])
                for where in rows for name in REFERENCE_METHODS], list(rows)
    where = table["dataset"]
    tag = "" if where == dataset else f", {DATASETS[where]}"
    if table["table"] == 3:
        return [(f"READ (paper{tag}, {frames} frames)", values) for frames, values in rows.items()], [where]
    return [(f"{PAPER_NAMES.get(name, name)} (paper{tag})", values) for name, values in rows.items()], [where]


def beside_paper(results: dict[str, Any], table: dict[str, Any]) -> list[str]:
    """Our row and the paper's rows of ``table`` in the columns both have (none: no lines)."""
    ours = {key for key, value in results["metrics"].items() if value is not None} | set(results["missing"])
    columns = [column for column in COLUMNS if column[0] in table["columns"] and column[0] in ours]
    if not columns:
        return []
    rows, on = paper_rows(table, results["dataset"])
    label = results["method"]
    if table["table"] == 3 and "frames" in results:  # the paper's rows are lengths: say which one ours is
        label = f"{label}, {results['frames']} frames"
    lines = [_row(label, [_cell(results, key, digits) for key, _, digits in columns])]
    lines += [_row(label, [f"{values[key]:.3f}" if key in values else "—" for key, _, _ in columns])
              for label, values in rows]
    source = (f"Table {table['table']} of READ (arXiv 2508.03457), \"{table['caption']}\", as printed "
              f"(eval/paper/table{table['table']}.yaml).")
    if on == [results["dataset"]]:
        heading = f"## Beside the paper: Table {table['table']}, {DATASETS[results['dataset']]}"
        note = f"The paper's rows: {source}"
    else:
        heading = (f"## The paper's Table {table['table']} for reference: "
                   f"{' and '.join(DATASETS[where] for where in on)} numbers, not comparable with "
                   f"{results['dataset']} data")
        note = f"For reference only, on other data: {source}"
    if any(key == "runtime" for key, _, _ in columns):
        note += (" The paper's Runtime is the diffusion backbone's mean seconds per 121-frame 512² video on an "
                 "NVIDIA A100; ours the backbone's mean seconds per video of this run, on its device.")
    return ["", heading, "", *_table(columns, lines), "", note]


def markdown(results: dict[str, Any], paper: dict[str, Any] | None = None) -> str:
    """Our table, one line per missing metric saying why, then our row beside the rows of ``paper`` (a table of
    :func:`readlit.paper_results.paper_table`), when given."""
    row = _row(results["method"], [_cell(results, key, digits) for key, _, digits in COLUMNS])
    lines = [f"# {results['dataset']}: {results['videos']} videos", "", *_table(list(COLUMNS), [row]), ""]
    lines += [f"- {name}: missing — {why}" for name, why in sorted(results["missing"].items())]
    lines += [f"- {name}: {value}" for name, value in sorted(results["protocol"].items())]
    if paper is not None:
        lines += beside_paper(results, paper)
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], out: str | Path, paper: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` (beside the rows of ``paper`` when given) into ``out``, each whole
    or not at all."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe(results), indent=2, sort_keys=True, allow_nan=False)
    atomic_write_text(out / "results.json", text + "\n")
    atomic_write_text(out / "results.md", markdown(results, paper))
    return out / "results.json", out / "results.md"
