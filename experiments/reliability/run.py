"""Run the whole bad-input table (tests/reliability) and count the outcomes: the ledger's numbers.

    .venv/bin/python experiments/reliability/run.py [--root DIR] [--only SUBSTRING] [--fast] [--exec]
        [--markdown OUT.md]

Every row of ``tests/reliability/cases.py`` (and the kill -9 and concurrency scenarios) runs in its own folder
under ``--root`` (default: a fresh temporary folder); shared fixtures are made once. Prints one line per kind and
the counts per outcome; ``--markdown`` also writes the per-kind table the README ledger quotes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.reliability.cases import CASES  # noqa: E402
from tests.reliability.fixtures import Fixtures  # noqa: E402
from tests.reliability.runner import OUTCOMES, ForkServer, Verdict, counts, run_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--only", default="", help="run the kinds whose id contains this")
    parser.add_argument("--fast", action="store_true", help="only the default-tier kinds")
    parser.add_argument("--exec", action="store_true", help="real subprocesses instead of the fork server")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="readlit-reliability-"))
    server = None if args.exec else ForkServer()
    fixtures = Fixtures(root / "fixtures", server)
    cases = [case for case in CASES if args.only in case.id and not (args.fast and case.slow)]
    verdicts: list[Verdict] = []
    start = time.monotonic()
    try:
        for case in cases:
            folder = root / "cases" / case.id
            shutil.rmtree(folder, ignore_errors=True)
            try:
                verdict = run_case(case, folder, fixtures, server)
            except Exception as err:  # noqa: BLE001 - a broken case is reported, not fatal to the table
                verdict = Verdict(case.id, "traceback", f"the case itself failed: {type(err).__name__}: {err}", 0.0)
            verdicts.append(verdict)
            print(f"{verdict.outcome:12s} {verdict.seconds:6.1f}s {case.id}: {verdict.detail[:160]}", flush=True)
    finally:
        if server is not None:
            server.close()
    total = counts(verdicts)
    print(f"\n{len(verdicts)} kinds in {time.monotonic() - start:.0f} s: " +
          ", ".join(f"{name} {total[name]}" for name in OUTCOMES))
    if args.markdown:
        rows = [f"| `{v.case}` | {v.outcome} | {v.detail[:140].replace('|', '/')} |" for v in verdicts]
        args.markdown.write_text("| kind | outcome | detail |\n|---|---|---|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
