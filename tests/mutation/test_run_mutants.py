"""The mutation check's machinery: its list matches the code, and a run kills what the tests see and no more."""

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from tests.mutation.run_mutants import MUTANTS, ROOT, Mutant, MutationError, apply, check_snippets, run_mutant, stage


def test_every_snippet_occurs_exactly_once_and_names_real_tests():
    check_snippets(ROOT, MUTANTS)
    assert len({mutant.name for mutant in MUTANTS}) == len(MUTANTS) >= 15
    assert all(mutant.original != mutant.replacement for mutant in MUTANTS)


def test_a_snippet_that_rotted_stops_the_run(tmp_path):
    rotten = replace(MUTANTS[0], original="t[:, 1] = times[i + 2]")
    with pytest.raises(MutationError, match="occurs 0 times"):
        check_snippets(ROOT, (rotten,))
    twice = replace(MUTANTS[0], original="times")
    with pytest.raises(MutationError, match="exactly once"):
        check_snippets(ROOT, (twice,))
    stage(ROOT, tmp_path)
    with pytest.raises(MutationError, match="exactly once"):
        apply(tmp_path, twice)


def test_apply_changes_the_copy_only(tmp_path):
    mutant = next(m for m in MUTANTS if m.name == "euler_sign")
    stage(ROOT, tmp_path)
    apply(tmp_path, mutant)
    assert mutant.replacement in (tmp_path / mutant.file).read_text()
    assert mutant.original in (ROOT / mutant.file).read_text()
    assert mutant.replacement not in (ROOT / mutant.file).read_text()


@pytest.mark.slow
def test_the_script_kills_two_mutants_and_reports_a_survivor(tmp_path):
    summary = tmp_path / "summary.json"
    done = subprocess.run([sys.executable, str(ROOT / "tests/mutation/run_mutants.py"), "--only", "euler_sign",
                           "motion_label_T_i", "--json", str(summary)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(summary.read_text())
    assert (result["killed"], result["tried"], result["survived"]) == (2, 2, [])
    assert all(mutant["caught_by"].startswith("test_") for mutant in result["mutants"])
    assert "| euler_sign |" in done.stdout and "killed 2/2" in done.stdout
    # the same bug against a test that cannot see it survives
    blind = Mutant("euler_sign_blind", "the Euler sign, tested by the token shift only", "src/readlit/flow/schedule.py",
                   "dt = rearrange(t_next - t,", "dt = rearrange(t - t_next,",
                   ("tests/unit/test_ans.py::test_token_shift_is_ltx_trainers",))
    assert run_mutant(ROOT, blind).status == "survived"
