"""Training mass at every time the ANS sampler evaluates, for the paper's and the demo's a2v configs (exact).

    python experiments/ans_consistency/coverage.py [--window 0.05] [--steps 8]

For each step i of the sampler: its target time T_i and the motion frame's T_{i+1}, and the probability that a
training draw puts the targets' t2 (resp. the motion frame's t1) within ±window of it (``ANSProcess.time_mass``),
with the one shift rule that both use (``model.ans.shift``). Prints a Markdown table per config.
"""

from __future__ import annotations

import argparse

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from readlit.flow.schedule import sampling_schedule
from readlit.resolvers import PROJECT_ROOT

# experiment -> overrides that compose it without weights, and the VAE's spatial ratio of its latents
CONFIGS = {"a2v_hdtf": (["vae=tiny"], 32), "demo_a2v": (["vae=tiny"], 8)}


def tokens_of(cfg, ratio: int) -> int:
    """Tokens of one clip sequence the network sees: the reference frame and the clip's latent frames."""
    latent = cfg.data.size // ratio
    return (1 + 1 + (cfg.data.num_frames - 1) // 8) * latent * latent


def table(experiment: str, window: float, steps: int) -> str:
    overrides, ratio = CONFIGS[experiment]
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", [f"experiment={experiment}", *overrides])
    ans = instantiate(cfg.model.ans)
    tokens = tokens_of(cfg, ratio)
    mu = ans.shift.mu_for(tokens)
    times = sampling_schedule(steps, mu).tolist()
    lines = [f"`experiment={experiment}`: {tokens} tokens, mu = {mu:.3f}, sigma = {ans.sigma}, "
             f"sync_prob = {ans.sync_prob}, clean_prob = {ans.clean_prob}", "",
             f"| step | T_i | P(t2 within ±{window}) | T_i+1 (motion) | P(t1 within ±{window}) |",
             "|---|---|---|---|---|"]
    for i, (target, motion) in enumerate(zip(times[:-1], times[1:], strict=True), start=1):
        lines.append(f"| {i} | {target:.3f} | {ans.time_mass(tokens, target - window, target + window)[1]:.2%} | "
                     f"{motion:.3f} | {ans.time_mass(tokens, motion - window, motion + window)[0]:.2%} |")
    lines.append(f"\nP(t1 = 0 exactly) = {ans.time_mass(tokens, 0.0, 0.0)[0]:.2%} (the last step's clean motion frame)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=0.05, help="half-width of the window around each time")
    parser.add_argument("--steps", type=int, default=8, help="sampling steps")
    args = parser.parse_args(argv)
    for experiment in CONFIGS:
        print(table(experiment, args.window, args.steps), end="\n\n")


if __name__ == "__main__":
    main()
