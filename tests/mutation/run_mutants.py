"""Mutation check of the core math: deliberate one-line bugs that the unit tests must catch.

Each mutant names a file, an exact snippet of it, the snippet's replacement and the few test files that must
fail once it is in. For each mutant the script copies ``src/``, ``tests/``, ``conf/`` and ``pyproject.toml`` to a
scratch folder, makes the one change there (the repository itself is never touched), and runs
``python -m pytest -x -q`` on the named tests with PYTHONPATH at the scratch ``src/``. A failing run kills the
mutant; a passing one means it survived: the tests cannot see that bug.

The list cannot rot silently: every snippet must occur exactly once in its file, or the script stops before
running anything. An unmutated copy runs every named test first, so a mutant is never "killed" by a test that
fails anyway, and a check that the copy imports its own ``readlit`` guards against testing the installed one.

Usage (from the repository root; a full run takes ~10 minutes on 2 CPU cores)::

    python tests/mutation/run_mutants.py                   # every mutant; exit 1 if any survives
    python tests/mutation/run_mutants.py --only euler_sign  # some of them
    python tests/mutation/run_mutants.py --list

It prints a markdown table (the ledger in ``experiments/mutation/README.md``) and writes a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("src", "tests", "conf", "pyproject.toml")
TIMEOUT_S = 600

SAMPLER, BASELINES, CFG = ("src/readlit/sampling/ans_sampler.py", "src/readlit/sampling/baselines.py",
                           "src/readlit/sampling/cfg.py")
ANS, SCHEDULE, DIT, ROPE = ("src/readlit/flow/ans.py", "src/readlit/flow/schedule.py", "src/readlit/nn/a2v_dit.py",
                            "src/readlit/nn/rope.py")
T_ANS, T_SAMPLER, T_DIT = "tests/unit/test_ans.py", "tests/unit/test_ans_sampler.py", "tests/unit/test_a2v_dit.py"
T_FLOPS = f"{T_DIT}::test_flops_on_meta_device_match_the_hand_count"


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug: ``original`` (found exactly once in ``file``) becomes ``replacement``."""

    name: str
    bug: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]


MUTANTS = (
    # Algorithm 1
    Mutant("motion_label_T_i", "the motion frame labelled T_i instead of T_{i+1}", SAMPLER,
           "t[:, 1] = times[i + 1]", "t[:, 1] = times[i]", (T_SAMPLER,)),
    Mutant("motion_value_T_i", "the motion frame taken from the previous clip at T_i, not T_{i+1}", SAMPLER,
           "x[:, :, 0] = motion[i + 1]", "x[:, :, 0] = motion[i]", (T_SAMPLER,)),
    Mutant("sampler_reference_time", "the reference frame labelled T_i instead of 0 while sampling", SAMPLER,
           "t[:, 0] = t_next[:, 0] = 0.0", "t_next[:, 0] = 0.0", (T_SAMPLER,)),
    Mutant("clip_stride", "clips that do not overlap by one frame", SAMPLER,
           "stride = clip_frames - overlap", "stride = clip_frames - 2 * overlap", (T_SAMPLER,)),
    # flow time
    Mutant("euler_sign", "the Euler step walks away from the data", SCHEDULE,
           "dt = rearrange(t_next - t,", "dt = rearrange(t - t_next,", (T_SAMPLER,)),
    Mutant("schedule_shift_direction", "the schedule shifted towards data instead of noise", SCHEDULE,
           "scale = math.exp(mu)", "scale = math.exp(-mu)", (T_SAMPLER,)),
    Mutant("noising_swapped", "z_t = t·z0 + (1 - t)·eps (the SiT direction)", ANS,
           "z_t=(1 - tt) * z0 + tt * eps", "z_t=tt * z0 + (1 - tt) * eps", (T_ANS,)),
    Mutant("velocity_target_sign", "the target velocity z0 - eps", ANS,
           "target=eps - z0", "target=z0 - eps", (T_ANS,)),
    # training times
    Mutant("t2_ignores_mu", "t2 drawn without the shift mu", ANS,
           "t2 = torch.sigmoid(mu + self.sigma * normal[:, 0])", "t2 = torch.sigmoid(self.sigma * normal[:, 0])",
           (T_ANS,)),
    Mutant("t2_ignores_sigma", "t2 drawn with sigma = 1 whatever the config", ANS,
           "t2 = torch.sigmoid(mu + self.sigma * normal[:, 0])", "t2 = torch.sigmoid(mu + normal[:, 0])", (T_ANS,)),
    Mutant("t1_ignores_mu", "t1 drawn without the shift mu", ANS,
           "t1 = torch.sigmoid(mu + self.sigma * torch.special.ndtri(below))",
           "t1 = torch.sigmoid(self.sigma * torch.special.ndtri(below))", (T_ANS,)),
    Mutant("t1_ignores_sigma", "t1 drawn with sigma = 1 whatever the config", ANS,
           "t1 = torch.sigmoid(mu + self.sigma * torch.special.ndtri(below))",
           "t1 = torch.sigmoid(mu + torch.special.ndtri(below))", (T_ANS,)),
    Mutant("t1_not_truncated", "t1 from the whole logit-normal, not truncated below t2", ANS,
           "below = torch.special.ndtr(normal[:, 1]) * torch.special.ndtr(normal[:, 0])",
           "below = torch.special.ndtr(normal[:, 1])", (T_ANS,)),
    Mutant("sync_share", "the synchronous share drawn at the clean share's rate", ANS,
           "t1 = torch.where(share < self.sync_prob, t2, t1)", "t1 = torch.where(share < self.clean_prob, t2, t1)",
           (T_ANS,)),
    Mutant("clean_share_value", "the clean share's motion frame at t2 instead of 0", ANS,
           "& (share < self.sync_prob + self.clean_prob), 0.0, t1)",
           "& (share < self.sync_prob + self.clean_prob), t2, t1)", (T_ANS,)),
    Mutant("training_reference_time", "z_R noised like the targets in training", ANS,
           "t[:, 0] = 0.0\n        t[:, 1] = t1", "t[:, 1] = t1", (T_ANS,)),
    Mutant("time_mass_truncation", "the exact motion-frame mass without the truncation below t2", ANS,
           "return value * (1.0 - math.log(value)) if value > 0.0 else 0.0", "return value", (T_ANS,)),
    Mutant("token_shift_anchor", "the token-count shift anchored at max_tokens", SCHEDULE,
           "return self.base_shift + slope * (tokens - self.base_tokens)",
           "return self.base_shift + slope * (tokens - self.max_tokens)", (T_ANS,)),
    Mutant("loss_includes_reference", "the loss mask keeps z_R", ANS,
           "mask[0] = 0.0", "mask[0] = 1.0", (T_ANS,)),
    # classifier-free guidance
    Mutant("split_cfg_weights_swapped", "eq. 17 with alpha and beta swapped", CFG,
           '"split": (1.0 - ref - audio, ref, audio)', '"split": (1.0 - ref - audio, audio, ref)', (T_SAMPLER,)),
    Mutant("joint_cfg_weight", "eq. 16 with 1 + alpha on the unconditional branch", CFG,
           '"joint": (1.0 - audio, audio)', '"joint": (1.0 + audio, audio)', (T_SAMPLER,)),
    Mutant("split_cfg_branch", "eq. 17's middle branch keeps the audio and drops z_R", CFG,
           '"split": ((False, False), (True, False), (True, True))',
           '"split": ((False, False), (False, True), (True, True))', (T_SAMPLER,)),
    # baselines
    Mutant("fuse_unweighted", "overlap-and-fuse adds the clips' velocities without the ramps", BASELINES,
           "velocity[:, :, span] += v * weights[None, None, :, None, None]", "velocity[:, :, span] += v",
           (T_SAMPLER,)),
    Mutant("fuse_step_sign", "overlap-and-fuse steps away from the data", BASELINES,
           "z = z + (times[i + 1] - times[i]) * velocity", "z = z + (times[i] - times[i + 1]) * velocity",
           (T_SAMPLER,)),
    Mutant("independent_audio_span", "every independent clip hears the first clip's audio", BASELINES,
           "v = _step(sampler, model, z_ref, x, audio[:, span], t)",
           "v = _step(sampler, model, z_ref, x, audio[:, :f], t)", (T_SAMPLER,)),
    Mutant("baseline_reference_time", "the baselines label the reference with T_i", BASELINES,
           "t[:, 0] = 0.0\n    return t", "return t", (T_SAMPLER,)),
    # the A2V-DiT
    Mutant("audio_previous_frame", "frame k's audio cross-attention queried by frame k-1's tokens", DIT,
           "queries = rearrange(tokens[:, 1:],", "queries = rearrange(tokens[:, :-1],", (T_DIT,)),
    Mutant("audio_pad_side", "the audio update of frame k added to frame k-1", DIT,
           "(0, 0, 0, 0, 1, 0))  # frame 0: no audio", "(0, 0, 0, 0, 0, 1))  # frame 0: no audio", (T_DIT,)),
    Mutant("audio_batch_order", "audio latents folded frame-major, mixing samples and frames", DIT,
           'context=rearrange(audio, "b f m d -> (b f) m d")', 'context=rearrange(audio, "b f m d -> (f b) m d")',
           (T_DIT,)),
    Mutant("dropped_layer", "the last transformer block skipped", DIT,
           "for block in self.transformer_blocks:", "for block in self.transformer_blocks[:-1]:", (T_FLOPS,)),
    Mutant("feed_forward_width", "a feed-forward 2x wide instead of 4x", DIT,
           "def __init__(self, dim: int, mult: int = 4):", "def __init__(self, dim: int, mult: int = 2):", (T_FLOPS,)),
    Mutant("extra_self_attention", "with text off, the text slot runs a second self-attention", DIT,
           'A2VBlock(dim, num_attention_heads, attention_head_dim, text != "off",',
           "A2VBlock(dim, num_attention_heads, attention_head_dim, True,", (T_FLOPS,)),
    Mutant("per_frame_time_order", "per-frame timesteps spread token-major over the frames", DIT,
           '"(b f) d -> b (f n) d"', '"(b f) d -> b (n f) d"', (T_DIT,)),
    Mutant("rope_axis_order", "RoPE's three axes laid out one after the other, not interleaved", ROPE,
           '"n k r -> n (r k two)"', '"n k r -> n (k r two)"', (T_DIT,)),
    Mutant("rope_reference_offset", "the reference frame moved with the clip's frame offset", ROPE,
           "frame = torch.where(frame > 0, frame + frame_offset, frame)", "frame = frame + frame_offset", (T_DIT,)),
)


class MutationError(Exception):
    """The mutant list or the unmutated tests are broken: nothing can be concluded."""


@dataclass
class Outcome:
    name: str
    bug: str
    file: str
    status: str  # killed | survived
    seconds: float
    caught_by: str


def check_snippets(root: Path, mutants: tuple[Mutant, ...]) -> None:
    """Every original snippet occurs exactly once, and every named test file exists."""
    for mutant in mutants:
        count = (root / mutant.file).read_text().count(mutant.original)
        if count != 1:
            raise MutationError(f"mutant {mutant.name}: {mutant.original!r} occurs {count} times in {mutant.file} "
                                "(must be exactly once): update the mutant list")
        for test in mutant.tests:
            if not (root / test.split("::")[0]).is_file():
                raise MutationError(f"mutant {mutant.name}: no test file {test}")


def stage(root: Path, scratch: Path) -> None:
    """Copy what the tests need into ``scratch``."""
    for name in COPIED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, scratch / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, scratch / name)


def apply(scratch: Path, mutant: Mutant) -> None:
    path = scratch / mutant.file
    text = path.read_text()
    if text.count(mutant.original) != 1:
        raise MutationError(f"mutant {mutant.name}: snippet not found exactly once in the scratch copy")
    path.write_text(text.replace(mutant.original, mutant.replacement))


def environment(scratch: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(scratch / "src"), env.get("PYTHONPATH")]))
    return env


def check_imports_copy(scratch: Path) -> None:
    """The scratch src must shadow any installed readlit, or every mutant would 'survive'."""
    found = subprocess.run([sys.executable, "-c", "import readlit; print(readlit.__file__)"], cwd=scratch,
                           env=environment(scratch), capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(scratch.resolve()):
        raise MutationError(f"the scratch copy imports readlit from {found}, not from {scratch / 'src'}")


def pytest(scratch: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    """Exit code and output of ``pytest -x -q`` on ``tests`` in the scratch copy (124 on a timeout)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=scratch, env=environment(scratch), capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {TIMEOUT_S} s"
    return done.returncode, done.stdout + done.stderr


def first_failure(output: str) -> str:
    """The first FAILED/ERROR test of pytest's short summary, without the file path."""
    match = re.search(r"^(?:FAILED|ERROR) \S*?::(\S+)", output, flags=re.MULTILINE)
    return match.group(1) if match else "collection error" if "ERROR" in output else ""


def baseline(root: Path, mutants: tuple[Mutant, ...]) -> None:
    tests = tuple(dict.fromkeys(test for mutant in mutants for test in mutant.tests))
    with tempfile.TemporaryDirectory(prefix="mutant-baseline-") as folder:
        scratch = Path(folder)
        stage(root, scratch)
        check_imports_copy(scratch)
        code, output = pytest(scratch, tests)
    if code != 0:
        raise MutationError(f"the unmutated tests fail (pytest exit {code}); fix them first:\n{output[-3000:]}")


def run_mutant(root: Path, mutant: Mutant) -> Outcome:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as folder:
        scratch = Path(folder)
        stage(root, scratch)
        apply(scratch, mutant)
        code, output = pytest(scratch, mutant.tests)
    if code not in (0, 1, 2, 124):  # 3-5: pytest itself broke or collected nothing: a broken selection
        raise MutationError(f"mutant {mutant.name}: pytest exit {code}:\n{output[-3000:]}")
    caught = "timeout" if code == 124 else first_failure(output)
    return Outcome(mutant.name, mutant.bug, mutant.file, "survived" if code == 0 else "killed",
                   round(time.monotonic() - started, 1), caught)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| mutant | bug | file | result | first failing test | s |", "|---|---|---|---|---|---|"]
    rows += [f"| {o.name} | {o.bug} | {Path(o.file).name} | {o.status} | {o.caught_by or '-'} | {o.seconds:.0f} |"
             for o in outcomes]
    killed = sum(o.status == "killed" for o in outcomes)
    return "\n".join(rows) + f"\n\nkilled {killed}/{len(outcomes)}"


def commit(root: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *COPIED], cwd=root, capture_output=True, text=True)
    return (done.stdout.strip() or "unknown") + ("+dirty" if dirty.stdout.strip() else "")


def write_summary(path: Path, summary: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(summary, indent=2) + "\n")
    partial.replace(path)


def select(names: list[str] | None) -> tuple[Mutant, ...]:
    if not names:
        return MUTANTS
    known = {mutant.name: mutant for mutant in MUTANTS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise MutationError(f"unknown mutant(s) {unknown}; --list shows them")
    return tuple(known[name] for name in names)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the mutation check of readlit's core math.")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", type=Path, default=ROOT / "experiments" / "mutation" / "summary.json",
                        help="where to write the JSON summary")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository to mutate (a copy is mutated)")
    args = parser.parse_args()
    try:
        mutants = select(args.only)
        check_snippets(args.root, mutants)
        if args.list:
            for mutant in mutants:
                print(f"{mutant.name:28} {mutant.file}: {mutant.bug}")
            return 0
        started = time.monotonic()
        baseline(args.root, mutants)
        outcomes = []
        for mutant in mutants:
            outcomes.append(run_mutant(args.root, mutant))
            print(f"{outcomes[-1].status:8} {mutant.name} ({outcomes[-1].seconds:.0f} s)", flush=True)
    except MutationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    survivors = [o.name for o in outcomes if o.status == "survived"]
    print("\n" + table(outcomes))
    write_summary(args.json, {
        "commit": commit(args.root), "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "seconds": round(time.monotonic() - started, 1),
        "killed": len(outcomes) - len(survivors), "tried": len(outcomes), "survived": survivors,
        "mutants": [{**asdict(o), "replacement": m.replacement, "original": m.original, "tests": list(m.tests)}
                    for o, m in zip(outcomes, mutants, strict=True)],
    })
    print(f"summary: {args.json}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
