"""ANS sampling: clip-after-clip == Algorithm 1's literal loop order; CFG in one forward; streaming cost; baselines."""

import math

import pytest
import torch
from einops import rearrange

from readlit.errors import ConfigError
from readlit.flow.schedule import TimeShift, euler_step, sampling_schedule
from readlit.sampling.ans_sampler import ANSSampler, clip_starts, padded_length
from readlit.sampling.baselines import fuse_weights, independent_clips, overlap_fuse
from readlit.sampling.cfg import Guidance

C, H, W, HW, DA = 4, 2, 3, 2, 5


class Toy(torch.nn.Module):
    """A small nonlinear velocity net that mixes frames, times, reference and audio; counts calls.

    Each frame's output depends on every frame's state and on every frame's time (the mean time, and the previous
    frame's time), as attention over per-token timesteps does: a wrong value or time label on any frame, the
    reference included, changes the output of the others.
    """

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.mix = torch.nn.Parameter(torch.randn(C, C, generator=generator) / C**0.5)
        self.audio = torch.nn.Parameter(torch.randn(DA, C, generator=generator))
        self.calls, self.batches = 0, []

    def forward(self, z, t, audio):
        self.calls += 1
        self.batches.append(z.shape[0])
        context = z.mean(dim=(2, 3, 4), keepdim=True)  # every frame sees every other one, as attention does
        sound = rearrange(audio.mean(dim=2) @ self.audio, "b f c -> b c f 1 1")
        sound = torch.cat([torch.zeros_like(sound[:, :, :1]), sound], dim=2)  # the reference gets no audio
        mixed = torch.einsum("dc,bcfhw->bdfhw", self.mix, z)
        clock = t + 0.5 * t.mean(dim=1, keepdim=True) + 0.25 * t.roll(1, dims=1)
        return torch.tanh(mixed + context + sound + rearrange(clock, "b f -> b 1 f 1 1"))


def inputs(frames: int, batch: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, C, 1, H, W, generator=generator),
            torch.randn(batch, frames, HW, DA, generator=generator),
            torch.randn(batch, C, frames, H, W, generator=generator))


def paper_schedule(steps: int, mu: float) -> list[float]:
    """T_1 = 1 ... T_n = 0: the uniform grid u through the shift, sigmoid(mu + logit(u)) = e^mu·u / (e^mu·u + 1 - u)."""
    grid = [1 - k / steps for k in range(steps + 1)]
    return [math.exp(mu) * u / (math.exp(mu) * u + 1 - u) for u in grid]


def paper_cfg(guidance: Guidance, model, z, t, audio):
    """Eq. 16 / 17 as printed, one forward per branch; a dropped condition is zeros."""
    no_ref = torch.cat([torch.zeros_like(z[:, :, :1]), z[:, :, 1:]], dim=2)
    silent = torch.zeros_like(audio)
    if guidance.mode == "none":
        return model(z, t, audio)
    if guidance.mode == "joint":
        alpha = guidance.audio_scale
        return (1 - alpha) * model(no_ref, t, silent) + alpha * model(z, t, audio)
    alpha, beta = guidance.ref_scale, guidance.audio_scale
    return (1 - alpha - beta) * model(no_ref, t, silent) + alpha * model(z, t, silent) + beta * model(z, t, audio)


def algorithm_1(steps: int, mu: float, f: int, guidance: Guidance, model, z_ref, audio, noise):
    """Algorithm 1 as printed, written from the paper alone (schedule, clips, CFG and Euler step included).

    Timesteps outside, clips inside, the whole sequence updated after each step; N = 1 + k(f - 1) frames.
    """
    times, batch = paper_schedule(steps, mu), noise.shape[0]
    clips = (noise.shape[2] - 1) // (f - 1)
    z = noise.clone()
    for i in range(steps):
        updated = z.clone()
        for j in range(clips):
            start = j * (f - 1)
            clip = z[:, :, start:start + f].clone()
            t = torch.tensor([[0.0] + [times[i]] * f] * batch)
            t_next = torch.tensor([[0.0] + [times[i + 1]] * f] * batch)
            if j > 0:  # Z_j(T_i)[1] <- Z_{j-1}(T_{i+1})[f], at t = [0, T_{i+1}, T_i ... T_i]
                clip[:, :, 0] = updated[:, :, start]
                t[:, 1] = times[i + 1]
            full = torch.cat([z_ref, clip], dim=2)
            v = paper_cfg(guidance, model, full, t, audio[:, start:start + f])
            stepped = full + rearrange(t_next - t, "b f -> b 1 f 1 1") * v  # z_{t'} = z_t + (t' - t)·v
            updated[:, :, start:start + f] = stepped[:, :, 1:]
        z = updated
    return z


@pytest.mark.parametrize("mode", ["none", "joint", "split"])
def test_clip_after_clip_equals_the_literal_loop_order(mode):
    sampler = ANSSampler(steps=5, clip_frames=4, guidance=Guidance(mode, 3.0, 1.5), shift=TimeShift(mu=1.0))
    frames = padded_length(10, 4)
    assert frames == 10 and len(clip_starts(frames, 4)) == 3
    z_ref, audio, noise = inputs(frames)
    with torch.no_grad():
        literal = algorithm_1(5, 1.0, 4, sampler.guidance, Toy(), z_ref, audio, noise)
        streamed = sampler.sample(Toy(), z_ref, audio, noise)
    torch.testing.assert_close(streamed, literal, rtol=0, atol=1e-6)
    # the clips really interact: without motion guidance the result differs
    independent = torch.cat([sampler.sample(Toy(), z_ref, audio[:, s:s + 4], noise[:, :, s:s + 4])
                             for s in (0, 3, 6)], dim=2)
    assert (independent[:, :, [4, 5, 7, 8]] - literal[:, :, [4, 5, 7, 8]]).abs().max() > 1e-3


class Recorder(Toy):
    """Toy that keeps every input it sees."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, z, t, audio):
        self.seen.append((z.clone(), t.clone()))
        return super().forward(z, t, audio)


def test_the_network_sees_algorithm_1s_times_and_motion_frames():
    """Clip 1 at [0, T_i ... T_i]; clip j > 1 at [0, T_{i+1}, T_i ... T_i] with clip j-1's last frame at T_{i+1}."""
    steps, f = 3, 3
    sampler = ANSSampler(steps=steps, clip_frames=f, guidance=Guidance("none"), shift=TimeShift(mu=math.log(3)))
    model = Recorder()
    z_ref, audio, noise = inputs(7)
    with torch.no_grad():
        result = sampler.sample(model, z_ref, audio, noise)
    times = [1.0, 6 / 7, 0.6, 0.0]  # 3u / (3u + 1 - u) at u = 1, 2/3, 1/3, 0
    seen = [model.seen[j * steps:(j + 1) * steps] for j in range(3)]  # clip after clip, step after step
    for j, clip in enumerate(seen):
        for i, (z, t) in enumerate(clip):
            motion = times[i + 1] if j > 0 else times[i]
            torch.testing.assert_close(t, torch.tensor([[0.0, motion, times[i], times[i]]] * 2), rtol=0, atol=1e-7)
            torch.testing.assert_close(z[:, :, :1], z_ref, rtol=0, atol=0)
            if j > 0:  # clip j-1's last frame after step i: its input to step i + 1, or its final value
                previous = seen[j - 1][i + 1][0][:, :, -1] if i + 1 < steps else result[:, :, 2 * j]
                torch.testing.assert_close(z[:, :, 1], previous, rtol=0, atol=0)
    torch.testing.assert_close(seen[0][0][0][:, :, 1:], noise[:, :, :f], rtol=0, atol=0)  # Z(T_1) = eps


def test_the_first_clip_costs_the_same_forwards_whatever_the_audio_length():
    sampler = ANSSampler(steps=4, clip_frames=3, guidance=Guidance("split"), shift=TimeShift(mu=0.5))
    calls = []
    for clips in (1, 3, 9):
        frames = padded_length(1 + 2 * clips, 3)
        model = Toy()
        stream = sampler.stream(model, *inputs(frames))
        piece, latents = next(stream)
        calls.append(model.calls)
        assert (piece, latents.shape[2]) == (slice(0, 3), 3)
        assert sum(1 for _ in stream) == clips - 1 and model.calls == 4 * clips
    assert calls == [4, 4, 4]


def test_split_cfg_is_one_batched_forward_equal_to_the_three_forward_formula():
    model, guidance = Toy(), Guidance("split", audio_scale=6.0, ref_scale=2.0)
    z_ref, audio, noise = inputs(4)
    z = torch.cat([z_ref, noise], dim=2)
    t = torch.rand(2, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        guided = guidance(model, z, t, audio)
        assert model.calls == 1 and model.batches == [6]
        no_ref = torch.cat([torch.zeros_like(z_ref), noise], dim=2)
        uncond = model(no_ref, t, torch.zeros_like(audio))
        ref_only = model(z, t, torch.zeros_like(audio))
        full = model(z, t, audio)
    torch.testing.assert_close(guided, (1 - 2 - 6) * uncond + 2 * ref_only + 6 * full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["joint", "split"])
def test_cfg_branches_one_forward_each_equal_the_batched_forward(mode):
    model, z_ref, audio, noise = Toy(), *inputs(4)
    z = torch.cat([z_ref, noise], dim=2)
    t = torch.rand(2, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = Guidance(mode, 6.0, 2.0)(model, z, t, audio)
        sequential = Guidance(mode, 6.0, 2.0, batched=False)(model, z, t, audio)
    branches = len(Guidance(mode).branches)
    assert model.batches == [2 * branches] + [2] * branches
    torch.testing.assert_close(sequential, batched, rtol=1e-6, atol=1e-6)


def _tiny_dit():
    from readlit.nn.a2v_dit import A2VDiT

    torch.manual_seed(0)
    net = A2VDiT(in_channels=C, num_attention_heads=2, attention_head_dim=8, num_layers=2, audio_dim=DA).eval()
    for block in net.transformer_blocks:  # a trained audio branch, so the hoisted audio keys/values matter
        torch.nn.init.normal_(block.attn_audio.to_out[0].weight, std=0.2)
    return net


@pytest.mark.parametrize("batched", [True, False])
def test_hoisting_the_clip_context_samples_exactly_the_plain_path(batched):
    plain = ANSSampler(steps=3, clip_frames=3, guidance=Guidance("split", batched=batched), shift=TimeShift(mu=0.5))
    hoisted = ANSSampler(steps=3, clip_frames=3, guidance=Guidance("split", batched=batched), shift=TimeShift(mu=0.5),
                         hoist=True)
    net, (z_ref, audio, noise) = _tiny_dit(), inputs(padded_length(5, 3))
    prepared = []
    net.prepare = lambda *args, prepare=net.prepare, **kwargs: prepared.append(1) or prepare(*args, **kwargs)
    groups = 1 if batched else 3
    with torch.no_grad():
        expected = plain.sample(net, z_ref, audio, noise)
        assert len(prepared) == 2 * 3 * groups  # the plain forward prepares its clip in every step
        prepared.clear()
        assert torch.equal(hoisted.sample(net, z_ref, audio, noise), expected)
    assert len(prepared) == 2 * groups  # once per clip (and per forward group), not per step
    with pytest.raises(ConfigError, match="hoist=True needs"):
        hoisted.sample(Toy(), z_ref, audio, noise)


def test_joint_cfg_matches_eq_16():
    model, guidance = Toy(), Guidance("joint", audio_scale=4.0)
    z_ref, audio, noise = inputs(3)
    z, t = torch.cat([z_ref, noise], dim=2), torch.full((2, 4), 0.5)
    with torch.no_grad():
        guided = guidance(model, z, t, audio)
        uncond = model(torch.cat([torch.zeros_like(z_ref), noise], dim=2), t, torch.zeros_like(audio))
        full = model(z, t, audio)
    assert model.batches[0] == 4
    torch.testing.assert_close(guided, -3 * uncond + 4 * full, rtol=0, atol=1e-5)


def test_schedule_runs_from_noise_to_data_and_shifts_towards_noise():
    plain, shifted = sampling_schedule(8, 0.0), sampling_schedule(8, 1.5)
    torch.testing.assert_close(plain, torch.linspace(1, 0, 9, dtype=torch.float64))
    assert shifted[0] == 1 and shifted[-1] == 0 and bool((shifted.diff() < 0).all())
    assert bool((shifted[1:-1] > plain[1:-1]).all())
    # e^mu = 3: T = 3u / (1 + 2u) at u = 1, 3/4, 1/2, 1/4, 0
    expected = torch.tensor([1, 0.9, 0.75, 0.5, 0], dtype=torch.float64)
    torch.testing.assert_close(sampling_schedule(4, math.log(3)), expected)


def test_euler_step_is_exact_per_frame_and_leaves_frames_with_equal_times():
    z, v = torch.randn(1, 2, 3, 1, 1), torch.randn(1, 2, 3, 1, 1)
    t, t_next = torch.tensor([[0.0, 0.5, 0.8]]), torch.tensor([[0.0, 0.5, 0.6]])
    out = euler_step(z, v, t, t_next)
    torch.testing.assert_close(out[:, :, :2], z[:, :, :2], rtol=0, atol=0)
    torch.testing.assert_close(out[:, :, 2], z[:, :, 2] - 0.2 * v[:, :, 2])


def test_clip_plans_cover_any_length():
    assert clip_starts(1, 4) == [0] and padded_length(1, 4) == 4
    assert clip_starts(4, 4) == [0] and clip_starts(5, 4) == [0, 3] and padded_length(5, 4) == 7
    with pytest.raises(ConfigError, match="must exceed the overlap"):
        clip_starts(5, 1)
    sampler = ANSSampler(steps=2, clip_frames=4, shift=TimeShift(mu=0.0))
    with pytest.raises(ConfigError, match="whole number of overlapping clips"):
        sampler.sample(Toy(), *inputs(5))


def test_baselines_shapes_and_fusion_weights():
    sampler = ANSSampler(steps=3, clip_frames=4, guidance=Guidance("none"), shift=TimeShift(mu=0.5))
    z_ref, audio, noise = inputs(8)
    assert independent_clips(sampler, Toy(), z_ref, audio, noise).shape == noise.shape
    z_ref, audio, noise = inputs(padded_length(8, 4, overlap=2))
    assert overlap_fuse(sampler, Toy(), z_ref, audio, noise, overlap=2).shape == noise.shape
    torch.testing.assert_close(fuse_weights(5, 2), torch.tensor([1 / 3, 2 / 3, 1, 2 / 3, 1 / 3], dtype=torch.float64))


class Linear(torch.nn.Module):
    """v_k = λ·z_k + μ·mean_j z_j + ρ·z_R + κ·t_k + ν·mean(t) + α·ā_k on the frames k >= 1 of a clip.

    mean_j z_j over the clip's frames, mean(t) over the reference's time too, ā_k the mean of frame k's audio latents.
    Linear in the conditions, so Joint-CFG with scale a multiplies the ρ and α terms by a.
    """

    LAMBDA, MU, RHO, KAPPA, NU, ALPHA = -0.7, 0.3, 0.5, 0.8, -0.6, 1.3

    def forward(self, z, t, audio):
        frames = z[:, :, 1:]
        v = (self.LAMBDA * frames + self.MU * frames.mean(dim=2, keepdim=True) + self.RHO * z[:, :, :1]
             + self.KAPPA * rearrange(t[:, 1:], "b f -> b 1 f 1 1")
             + self.NU * rearrange(t.mean(dim=1), "b -> b 1 1 1 1")
             + self.ALPHA * rearrange(audio.mean(dim=(2, 3)), "b f -> b 1 f 1 1"))
        return torch.cat([torch.zeros_like(z[:, :, :1]), v], dim=2)


def linear_velocity(x, z_ref, sound, time, scale):
    """Linear's velocity of one clip's frames x (B, C, f, h, w), every frame at ``time``, written out."""
    f = x.shape[2]
    return (Linear.LAMBDA * x + Linear.MU * x.mean(dim=2, keepdim=True) + Linear.KAPPA * time
            + Linear.NU * f * time / (1 + f) + scale * (Linear.RHO * z_ref + Linear.ALPHA * sound))


@pytest.mark.parametrize(("mode", "scale"), [("none", 1.0), ("joint", 2.5)])
def test_independent_clips_are_clip_by_clip_euler_loops(mode, scale):
    """ "w/o ANS": each clip of f frames runs every step at t = [0, T_i ... T_i] from its own noise and audio."""
    sampler = ANSSampler(steps=3, clip_frames=3, guidance=Guidance(mode, audio_scale=scale), shift=TimeShift(mu=0.0))
    z_ref, audio, noise = inputs(9)
    times = [1.0, 2 / 3, 1 / 3, 0.0]  # no shift: the uniform grid
    sound = rearrange(audio.double().mean(dim=(2, 3)), "b f -> b 1 f 1 1")
    expected = []
    for start in (0, 3, 6):
        x = noise[:, :, start:start + 3].double()
        for i in range(3):
            v = linear_velocity(x, z_ref.double(), sound[:, :, start:start + 3], times[i], scale)
            x = x + (times[i + 1] - times[i]) * v
        expected.append(x)
    out = independent_clips(sampler, Linear(), z_ref, audio, noise)
    torch.testing.assert_close(out.double(), torch.cat(expected, dim=2), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("mode", "scale"), [("none", 1.0), ("joint", 2.5)])
def test_overlap_fuse_blends_the_clips_velocities_with_ramps(mode, scale):
    """Clips of 4 frames overlapping by 2, all at T_i; shared frames take the ramp-weighted mean of the velocities."""
    sampler = ANSSampler(steps=3, clip_frames=4, guidance=Guidance(mode, audio_scale=scale), shift=TimeShift(mu=0.0))
    z_ref, audio, noise = inputs(8)
    times, starts = [1.0, 2 / 3, 1 / 3, 0.0], (0, 2, 4)
    ramps = [1 / 3, 2 / 3, 2 / 3, 1 / 3]  # k / (overlap + 1) up at the start of each clip, down at its end
    sound = rearrange(audio.double().mean(dim=(2, 3)), "b f -> b 1 f 1 1")
    z = noise.double()
    for i in range(3):
        weighted, total = torch.zeros_like(z), [0.0] * 8
        for start in starts:
            v = linear_velocity(z[:, :, start:start + 4], z_ref.double(), sound[:, :, start:start + 4], times[i], scale)
            for k in range(4):
                weighted[:, :, start + k] += ramps[k] * v[:, :, k]
                total[start + k] += ramps[k]
        z = z + (times[i + 1] - times[i]) * weighted / torch.tensor(total, dtype=torch.float64)[:, None, None]
    out = overlap_fuse(sampler, Linear(), z_ref, audio, noise, overlap=2)
    torch.testing.assert_close(out.double(), z, rtol=0, atol=1e-5)
