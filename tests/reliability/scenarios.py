"""The table's scenario rows: kill -9 at chosen moments, runs started together, builds retried or damaged.

Each scenario returns ``(outcome, detail)`` with the outcomes of :mod:`tests.reliability.runner`; the slow test
tier asserts each one is ``ok``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.reliability.fixtures import TINY
from tests.reliability.runner import Case, Result, Running, start_command

Outcome = tuple[str, str]
_SPEECHAE = ["experiment=demo_speechae", *TINY, "data.num_frames=9", "+trainer.limit_train_batches=2",
             "+trainer.limit_val_batches=1", "test=false"]


def _temp_files(folder: Path) -> list[Path]:
    """Temporary files a checkpoint writer may be filling (Lightning's in TMPDIR, readlit's beside the target)."""
    if not folder.is_dir():
        return []
    return [p for p in folder.rglob("*") if p.is_file() and (p.name.endswith(".tmp") or p.name.startswith("tmp"))]


def _kill_when(running: Running, ready: Callable[[], bool], timeout: float = 300.0) -> bool:
    """SIGKILL ``running`` as soon as ``ready()``; False if it ended (or timed out) first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            os.kill(running.pid, signal.SIGKILL)
            return True
        if not _alive(running.pid):
            return False
        time.sleep(0.0005)
    return False


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def _step(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def _checkpoints_state(folder: Path) -> tuple[str, str] | None:
    """A problem with the checkpoints in ``folder`` (unreadable, or last.ckpt older than another), or None."""
    from readlit.checkpoint import load_checkpoint
    from readlit.errors import ReadlitError

    steps = {}
    for path in sorted(folder.glob("*.ckpt")):
        try:
            load_checkpoint(path)
            steps[path.name] = _step(path)
        except (ReadlitError, RuntimeError, EOFError) as err:
            return "data_lost", f"{path.name} does not load ({type(err).__name__})"
    if steps and "last.ckpt" not in steps:
        return "data_lost", f"no last.ckpt beside {sorted(steps)}"
    if steps and any(step > steps["last.ckpt"] for step in steps.values()):
        return "data_lost", f"last.ckpt is older than another checkpoint: {steps}"
    return None


class _SaveWatch:
    """Counts checkpoint saves by the temporary files they write; ready once the ``save``-th one is being written."""

    def __init__(self, folders: list[Path], save: int):
        self.folders, self.save, self.saves, self.writing = folders, save, 0, False

    def __call__(self) -> bool:
        writing = any(_temp_files(folder) for folder in self.folders)
        if writing and not self.writing:
            self.saves += 1
        self.writing = writing
        return writing and self.saves >= self.save


def _kill_one_save(folder: Path, save: int, fx: Any) -> Outcome | str:
    """One kill during the ``save``-th checkpoint save, then a resume: a problem, or a line for the detail."""
    tmp = folder / "tmp"
    tmp.mkdir(parents=True)
    run_dir, checkpoints = folder / "run", folder / "run" / "checkpoints"
    argv = [*_SPEECHAE, "trainer.max_epochs=8", f"hydra.run.dir={run_dir}", f"paths.root_dir={folder}"]
    running = start_command("train", argv, folder, fx.server, env={"TMPDIR": str(tmp)})
    killed = _kill_when(running, _SaveWatch([tmp, checkpoints], save))
    result = running.wait(60)
    if not killed:
        return f"save {save}: the run ended (exit {result.code}) before the kill"
    if left := _temp_files(tmp):
        return "data_lost", f"save {save}: {len(left)} temporary file(s) left in TMPDIR ({left[0].name})"
    if problem := _checkpoints_state(checkpoints):
        return problem[0], f"save {save}: {problem[1]}"
    last = checkpoints / "last.ckpt"
    if not last.is_file():
        return f"save {save}: killed in the first save, nothing to resume"
    step = _step(last)
    resumed = folder / "resumed"
    argv = [*_SPEECHAE, "trainer.max_epochs=9", f"ckpt_path={last}", f"hydra.run.dir={resumed}",
            f"paths.root_dir={folder}"]
    result = start_command("train", argv, folder, fx.server, env={"TMPDIR": str(tmp)}).wait(600)
    if result.code != 0:
        return "traceback", f"save {save}: the resumed run exited {result.code}: {result.stderr[-300:]}"
    final = _step(resumed / "checkpoints" / "last.ckpt")
    if final != 18:
        return "data_lost", f"save {save}: resumed from step {step}, ended at step {final}, not 18"
    if left := _temp_files(checkpoints) + _temp_files(tmp):
        return "defect", f"save {save}: the next start left {left[0].name} where the kill left it"
    return f"save {save}: killed at step {step}, resumed to 18"


def kill_train_mid_save(case: Path, fx: Any) -> Outcome:
    """kill -9 a training run while it writes its 1st, 2nd and 3rd checkpoint; every checkpoint left must load,
    last.ckpt must be the newest, no temporary file may stay anywhere, and resuming must reach the right step."""
    details = []
    for save in (1, 2, 3):
        found = _kill_one_save(case / f"kill{save}", save, fx)
        if isinstance(found, tuple):
            return found
        details.append(found)
    return "ok", "; ".join(details)


def _raw_tree(root: Path, clips: int) -> Path:
    from tests.fake_raw import WINDOW, write_talking_head

    names = [f"Radio{chr(65 + i)}_0" for i in range(clips)]
    for index, name in enumerate(names):
        write_talking_head(root / "videos" / f"{name}.mp4", index + 1, 2.0, 25, 16000)
    (root / "HDTF_dataset").mkdir(parents=True)
    (root / "HDTF_dataset" / "RD_crop_wh.txt").write_text(
        "".join(f"{name}.mp4 {' '.join(map(str, WINDOW))}\n" for name in names))
    return root


def _tree(root: Path, skip: tuple[str, ...] = (".lock",)) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in skip}


def _preprocess_argv(raw: Path, out: Path, workers: int) -> list[str]:
    return ["data=hdtf", f"raw_dir={raw}", f"out_dir={out}", "audio=whisper_random_tiny", "data.size=64",
            "progress=false", f"workers={workers}", f"paths.root_dir={out.parent}"]


def _same_cache(one: Path, other: Path) -> str | None:
    import json

    a, b = _tree(one, (".lock", "manifest.json")), _tree(other, (".lock", "manifest.json"))
    if a != b:
        differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        return f"the resumed cache differs from a clean build: {differ[:3]}"
    clips = [json.loads((root / "manifest.json").read_text())["clips"] for root in (one, other)]
    return None if clips[0] == clips[1] else "the manifests list other clips"


# A worker at work goes with its parent (the kernel kills it); one still importing (a spawned worker imports
# readlit before its initializer can ask for that) goes when its imports end: 10-20 s on a loaded 2-core machine.
# What must never happen is a write into the cache after the kill, which the scenario checks exactly.
_ORPHAN_GRACE = 60.0


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file and folder under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _wait_gone(pids: set[int], timeout: float) -> float:
    """Seconds until none of ``pids`` is alive (polling), or ``timeout``."""
    start = time.monotonic()
    while any(_alive(pid) for pid in pids) and time.monotonic() - start < timeout:
        time.sleep(0.05)
    return time.monotonic() - start


def kill_preprocess_workers(case: Path, fx: Any) -> Outcome:
    """kill -9 preprocessing (workers=2) once a clip is done: its workers must die with it, and the resumed run
    must end with the same cache as a clean one."""
    return _kill_preprocess(case, fx, lambda out: any((out / "clips").glob("Radio*/meta.json")))


def kill_preprocess_spawning(case: Path, fx: Any) -> Outcome:
    """kill -9 preprocessing (workers=2) as soon as its workers exist, while they still import: they must go once
    their imports end, without starting a clip."""
    return _kill_preprocess(case, fx, lambda out: True)


def _kill_preprocess(case: Path, fx: Any, ready: Callable[[Path], bool]) -> Outcome:
    """kill -9 preprocessing (workers=2) once both workers exist and ``ready(cache)``; then the workers must go
    (those still importing, as soon as their imports end) without writing into the cache, and a resumed run must
    equal a clean one."""
    raw = _raw_tree(case / "raw", 6)
    out = case / "killed" / "cache"
    out.parent.mkdir()
    running = start_command("preprocess", _preprocess_argv(raw, out, 2), out.parent, fx.server)
    workers: set[int] = set()

    def time_to_kill() -> bool:
        workers.update(_children(running.pid))
        return len(workers) >= 2 and ready(out)

    if not _kill_when(running, time_to_kill):
        return "defect", f"preprocessing ended before a kill (exit {running.wait(60).code})"
    running.wait(60)
    at_kill = _snapshot(out)
    gone = _wait_gone(workers, _ORPHAN_GRACE)
    survivors = [pid for pid in workers if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    if survivors:
        return "defect", f"{len(survivors)} worker(s) still running {_ORPHAN_GRACE:.0f} s after their parent was killed"
    now = _snapshot(out)
    written = sorted(k for k in at_kill.keys() | now.keys() if at_kill.get(k) != now.get(k))
    if written:
        return "defect", f"workers wrote into the cache after their run was killed: {written[:3]}"
    resumed = start_command("preprocess", _preprocess_argv(raw, out, 2), out.parent, fx.server).wait(600)
    clean_out = case / "clean" / "cache"
    clean_out.parent.mkdir()
    clean = start_command("preprocess", _preprocess_argv(raw, clean_out, 1), clean_out.parent, fx.server).wait(600)
    if resumed.code or clean.code:
        return "traceback", f"exit {resumed.code} / {clean.code}: {(resumed.stderr + clean.stderr)[-300:]}"
    problem = _same_cache(out, clean_out)
    return ("data_lost", problem) if problem else (
        "ok", f"killed with {len(workers)} worker(s), gone after {gone:.1f} s; resumed identical")


_LATENT_ARGS = ["stage=latents", "data=synthetic", "vae=demo", "audio=whisper_random_tiny",
                "data.identities={train:3,val:1,test:1}", "data.session_seconds=2", "data.num_frames=9",
                "latents.shard_size=1", "latents.batch_size=2", "progress=false"]


def _latents(out: Path, fx: Any, *extra: str, background: bool = False) -> Result | Running:
    argv = [*_LATENT_ARGS, f"latents.out_dir={out}", f"paths.root_dir={out.parent}", *extra]
    running = start_command("preprocess", argv, out.parent, fx.server)
    return running if background else running.wait(600)


def kill_latent_cache(case: Path, fx: Any) -> Outcome:
    """kill -9 a latent-cache build after its first shard; the resumed build must equal a clean one, byte for byte."""
    (case / "killed").mkdir()
    (case / "clean").mkdir()
    out, clean = case / "killed" / "latents", case / "clean" / "latents"
    running = _latents(out, fx, background=True)
    if not _kill_when(running, lambda: any(out.glob("*/shard-*.safetensors"))):
        return "defect", f"the build ended before a kill (exit {running.wait(60).code})"
    running.wait(60)
    results = [_latents(out, fx), _latents(clean, fx)]
    if any(r.code for r in results):
        return "traceback", f"exit {[r.code for r in results]}: {results[0].stderr[-300:]}"
    a, b = _tree(out), _tree(clean)
    if a != b:
        differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        return "data_lost", f"differs from a clean build: {differ[:3]}"
    return "ok", f"{len(a)} files identical"


def latent_retry_after_failure(case: Path, fx: Any) -> Outcome:
    """A build refused for a bad setting, then corrected into the same folder, must build."""
    out = case / "latents"
    first = _latents(out, fx, "data.size=60")
    if first.code != 2:
        return "traceback" if first.code else "silent_wrong", f"the bad build exited {first.code}"
    second = _latents(out, fx)
    if second.code != 0:
        lines = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        return "defect", f"the corrected retry exited {second.code}: {(lines or [second.stderr[-200:]])[-1][:200]}"
    return "ok", "the corrected retry built"


def latent_truncated_shard(case: Path, fx: Any) -> Outcome:
    """A shard cut short after the build must not survive the next build (rebuilt, or refused with its name)."""
    out = case / "latents"
    if (first := _latents(out, fx)).code:
        return "traceback", f"the build exited {first.code}: {first.stderr[-300:]}"
    shard = sorted(out.glob("train/shard-*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    second = _latents(out, fx)
    if second.code == 2 and shard.name in second.stderr:
        return "ok", "refused naming the damaged shard"
    if second.code:
        return "traceback", f"the rebuild exited {second.code}: {second.stderr[-300:]}"
    from safetensors import safe_open

    try:
        with safe_open(str(shard), framework="pt") as handle:
            handle.keys()
    except Exception as err:  # noqa: BLE001 - any failure to open is the finding
        return "data_lost", f"the rebuild kept the damaged {shard.name} ({type(err).__name__})"
    return "ok", "the damaged shard was rebuilt"


def train_same_second(case: Path, fx: Any) -> Outcome:
    """Two training runs started together: each must get its own run folder (config, checkpoints, metrics)."""
    argv = [*_SPEECHAE, "trainer.max_epochs=1", f"paths.root_dir={case}"]
    runs = [start_command("train", [*argv, f"seed={seed}"], case, fx.server, name=str(seed)) for seed in (11, 22)]
    results = [run.wait(600) for run in runs]
    if any(r.code for r in results):
        return "traceback", f"exit {[r.code for r in results]}: {results[0].stderr[-300:]}"
    folders = sorted(case.glob("logs/*/runs/*"))
    seeds = sorted((f / ".hydra" / "config.yaml").read_text().split("\nseed: ")[1].split()[0] for f in folders)
    if len(folders) != 2 or seeds != ["11", "22"]:
        return "data_lost", f"{len(folders)} run folder(s) for 2 runs (seeds recorded: {seeds})"
    if not all((f / "checkpoints" / "last.ckpt").is_file() and (f / "metrics.json").is_file() for f in folders):
        return "data_lost", "a run folder lacks its checkpoint or metrics"
    return "ok", f"{folders[0].name} and {folders[1].name}"


def generate_same_out(case: Path, fx: Any) -> Outcome:
    """Two generates to the same ``out`` started together: one writes it, the other refuses; none is lost."""
    out = case / "out.mp4"
    argv = [f"ckpt={fx.a2v_ckpt}", f"image={fx.face_png}", f"audio={fx.speech_wav}", f"out={out}",
            f"paths.root_dir={case}", "progress=false"]
    runs = [start_command("generate", [*argv, f"seed={seed}"], case, fx.server, name=str(seed)) for seed in (1, 2)]
    results = [run.wait(600) for run in runs]
    codes = sorted(r.code for r in results)
    if any(c not in (0, 2) for c in codes):
        return "traceback", f"exit {codes}"
    if codes == [0, 0]:
        return "data_lost", "both runs report writing out.mp4: one video was silently replaced"
    if codes != [0, 2] or not out.is_file():
        return "defect", f"exit {codes}, out.mp4 {'exists' if out.is_file() else 'missing'}"
    return "ok", "one wrote, the other refused"


SCENARIOS = [
    Case("scenario-kill-train-mid-save", "scenario", run=kill_train_mid_save, slow=True),
    Case("scenario-kill-preprocess-workers", "scenario", run=kill_preprocess_workers, slow=True),
    Case("scenario-kill-preprocess-spawning", "scenario", run=kill_preprocess_spawning, slow=True),
    Case("scenario-kill-latent-cache", "scenario", run=kill_latent_cache, slow=True),
    Case("scenario-latent-retry-after-failure", "scenario", run=latent_retry_after_failure, slow=True),
    Case("scenario-latent-truncated-shard", "scenario", run=latent_truncated_shard, slow=True),
    Case("scenario-train-same-second", "scenario", run=train_same_second, slow=True),
    Case("scenario-generate-same-out", "scenario", run=generate_same_out, slow=True),
]
