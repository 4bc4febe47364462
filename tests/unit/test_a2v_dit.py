"""A2V-DiT: LTX weights load by name and reproduce diffusers' LTX transformer; audio stays in its frame."""

import pytest
import torch
from diffusers import LTXVideoTransformer3DModel
from einops import rearrange, repeat

from readlit.errors import CheckpointError
from readlit.nn.a2v_dit import A2VDiT, forward_flops
from readlit.nn.ltx_init import load_ltx_transformer, load_ltx_weights, locate, read_weights
from readlit.nn.rope import video_positions

LTX = dict(in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=12, cross_attention_dim=24,
           num_layers=2, caption_channels=16)
ROPE_SCALE = (8 / 25, 32, 32)
B, F, H, W, HW, DA = 2, 3, 4, 5, 3, 6


@pytest.fixture(scope="module")
def ltx_folder(tmp_path_factory):
    torch.manual_seed(0)
    model = LTXVideoTransformer3DModel(**LTX).eval()
    folder = tmp_path_factory.mktemp("ltx")
    model.save_pretrained(folder, safe_serialization=True)
    return model, folder


def inputs(seed=1, frames=F):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, 8, frames, H, W, generator=g)
    t = torch.rand(B, frames, H, W, generator=g)  # per-token times
    t[:, 0] = 0.0
    text = torch.randn(B, 5, 16, generator=g)
    mask = torch.ones(B, 5)
    mask[1, 3:] = 0
    audio = torch.randn(B, frames - 1, HW, DA, generator=g)
    return z, t, text, mask, audio


def _ltx(ltx, z, t, text, mask, **positions):
    """diffusers' LTX transformer on our layout: (B, C, f, h, w) in and out, t in [0, 1]."""
    frames, height, width = z.shape[2:]
    out = ltx(rearrange(z, "b c f h w -> b (f h w) c"), text, rearrange(t, "b f h w -> b (f h w)") * 1000, mask,
              num_frames=frames, height=height, width=width, **positions).sample
    return rearrange(out, "b (f h w) c -> b c f h w", f=frames, h=height)


@pytest.fixture(scope="module")
def ltx_net(ltx_folder):
    _, folder = ltx_folder
    return load_ltx_transformer(str(folder), subfolder=None, in_channels=8, audio_dim=DA, text="embeddings",
                                rope_scale=ROPE_SCALE).eval()


def test_ltx_weights_load_by_name(ltx_folder, caplog):
    _, folder = ltx_folder
    with caplog.at_level("INFO"):
        load_ltx_transformer(str(folder), subfolder=None, in_channels=8, audio_dim=DA, text="embeddings",
                             rope_scale=ROPE_SCALE)
    assert "new (fresh init)" in caplog.text and "attn_audio" in caplog.text and "audio_projection" in caplog.text


@pytest.mark.parametrize("frames", [3, 9, 17])  # 17 latent frames: the paper's 121-frame clip and its reference
def test_ltx_weights_reproduce_diffusers(ltx_folder, ltx_net, frames):
    z, t, text, mask, audio = inputs(frames=frames)
    with torch.no_grad():
        ours = ltx_net(z, t, audio, text=text, text_mask=mask)
        theirs = _ltx(ltx_folder[0], z, t, text, mask, rope_interpolation_scale=ROPE_SCALE)
    print(f"{frames} latent frames: max |A2V-DiT - LTX| = {(ours - theirs).abs().max().item():.2e}")
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("offset", [5, 40])
def test_shifted_frame_positions_reproduce_diffusers(ltx_folder, ltx_net, offset):
    """A window whose frames sit ``offset`` latent frames later (the reference stays at 0), as LTX places it."""
    z, t, text, mask, audio = inputs(frames=17)
    positions = video_positions(17, H, W, frame_offset=offset)  # (L, 3)
    coords = repeat(positions * torch.tensor(ROPE_SCALE, dtype=torch.float32), "l k -> b k l", b=B)
    with torch.no_grad():
        ours = ltx_net(z, t, audio, frame_offset=offset, text=text, text_mask=mask)
        theirs = _ltx(ltx_folder[0], z, t, text, mask, video_coords=coords)
        unshifted = ltx_net(z, t, audio, text=text, text_mask=mask)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    assert (ours - unshifted).abs().max() > 1e-4  # the positions do move the output


def test_report_names_new_and_dropped_keys(ltx_folder):
    _, folder = ltx_folder
    net = A2VDiT(**LTX, audio_dim=DA, text="off")
    report = load_ltx_weights(net, read_weights(folder), "test")
    assert report.new and all("audio" in key for key in report.new)
    assert report.dropped and all("attn2" in key or "caption_projection" in key for key in report.dropped)
    net = A2VDiT(**{**LTX, "num_layers": 3}, audio_dim=DA, text="embeddings")
    with pytest.raises(CheckpointError, match=r"missing: \d+ \(e.g. transformer_blocks.2"):
        load_ltx_weights(net, read_weights(folder), "test")


def test_missing_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="model.net.pretrained='/nonexistent/ltx'.*no such folder"):
        locate("/nonexistent/ltx", None, "model.net.pretrained")
    with pytest.raises(CheckpointError, match="cannot be fetched from https://huggingface.co/Lightricks/LTX-Video"):
        locate("Lightricks/LTX-Video", "transformer", "model.net.pretrained")
    with pytest.raises(CheckpointError, match="no config.json"):
        locate(str(tmp_path), None, "model.net.pretrained")


def trained_audio_net() -> A2VDiT:
    """One block whose audio branch is trained: the fresh one adds exactly nothing."""
    torch.manual_seed(0)
    net = A2VDiT(in_channels=8, num_attention_heads=2, attention_head_dim=8, num_layers=1, audio_dim=DA).eval()
    torch.nn.init.normal_(net.transformer_blocks[0].attn_audio.to_out[0].weight, std=0.2)
    return net


def block_inputs(frames: int):
    """Video tokens (B, L, 16), AdaLN modulation (B, L, 96) and audio latents (B, frames - 1, HW, DA)."""
    g = torch.Generator().manual_seed(2)
    tokens = frames * H * W
    return (torch.randn(B, tokens, 16, generator=g), torch.randn(B, tokens, 6 * 16, generator=g),
            torch.randn(B, frames - 1, HW, DA, generator=g))


def test_audio_of_frame_k_reaches_only_frame_k():
    """Every frame of a clip of 6 latent frames after the reference: changing C_k changes frame k's tokens only."""
    frames = 7
    net = trained_audio_net()
    block = net.transformer_blocks[0]
    x, temb, audio = block_inputs(frames)
    rope = net.rope(video_positions(frames, H, W))
    with torch.no_grad():
        before = block(x, temb, rope, net.audio_projection(audio), None, None)
        for k in range(1, frames):
            changed = audio.clone()
            changed[:, k - 1] += 1.0  # C_k belongs to latent frame k (the audio starts at frame 1)
            after = block(x, temb, rope, net.audio_projection(changed), None, None)
            difference = rearrange(after - before, "b (f n) d -> f (b n d)", f=frames).abs().amax(dim=1)
            assert difference[k] > 1e-3, k
            assert difference[torch.arange(frames) != k].max() == 0, (k, difference)


def test_audio_cross_attention_is_eq_10_for_every_frame():
    """Frame k's update is the attention of frame k's own tokens to C_k alone, sample by sample; z_R gets none."""
    frames = 7
    net = trained_audio_net()
    block = net.transformer_blocks[0]
    x, _, audio = block_inputs(frames)
    with torch.no_grad():
        audio = net.audio_projection(audio)
        update = rearrange(block.audio_cross_attention(x, audio), "b (f n) d -> b f n d", f=frames)
        tokens = rearrange(x, "b (f n) d -> b f n d", f=frames)
        assert update[:, 0].abs().max() == 0
        for k in range(1, frames):
            for b in range(B):
                alone = block.attn_audio(block.norm_audio(tokens[b:b + 1, k]), context=audio[b:b + 1, k - 1])
                torch.testing.assert_close(update[b:b + 1, k], alone, rtol=0, atol=1e-6)


def test_fresh_audio_branch_adds_nothing_and_gradients_flow():
    torch.manual_seed(0)
    net = A2VDiT(in_channels=8, num_attention_heads=2, attention_head_dim=8, num_layers=2, audio_dim=DA,
                 text="null", caption_channels=16, cross_attention_dim=16, gradient_checkpointing=True)
    z, t, _, _, audio = inputs()
    t = t[:, :, 0, 0]
    v = net(z, t, audio, frame_offset=4)
    assert v.shape == z.shape
    torch.testing.assert_close(v, net(z, t, torch.randn_like(audio), frame_offset=4))
    v.square().mean().backward()
    assert net.transformer_blocks[0].attn_audio.to_out[0].weight.grad.abs().sum() > 0
    assert net.null_text.grad is not None


def test_per_frame_times_equal_per_token_times():
    torch.manual_seed(0)
    net = A2VDiT(in_channels=8, num_attention_heads=2, attention_head_dim=8, num_layers=1, audio_dim=DA).eval()
    z, _, _, _, audio = inputs()
    t = torch.rand(B, F)
    with torch.no_grad():
        torch.testing.assert_close(net(z, t, audio), net(z, repeat(t, "b f -> b f h w", h=H, w=W), audio))


def test_positions_put_the_reference_at_zero_and_the_frames_after_it():
    positions = video_positions(4, 2, 3, frame_offset=5)
    assert positions.shape == (24, 3)
    assert positions[:6, 0].tolist() == [0.0] * 6 and positions[6:12, 0].tolist() == [6.0] * 6
    assert positions[-1].tolist() == [8.0, 1.0, 2.0] and positions[7].tolist() == [6.0, 0.0, 1.0]


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_the_whole_net_runs_cast_to_float64_and_bfloat16(dtype):
    torch.manual_seed(0)
    net = A2VDiT(in_channels=8, num_attention_heads=2, attention_head_dim=12, num_layers=2, audio_dim=DA).eval()
    z, t, _, _, audio = inputs()
    t = t[:, :, 0, 0]
    with torch.no_grad():
        reference = net(z, t, audio)
        cast = net.to(dtype)(z.to(dtype), t, audio.to(dtype))
    assert cast.dtype == dtype
    error = (cast.float() - reference).abs().mean() / reference.abs().mean()
    assert error < (1e-6 if dtype == torch.float64 else 0.03)


@pytest.mark.parametrize("text", ["off", "null"])
def test_flops_on_meta_device_match_the_hand_count(text):
    """Every matmul of one forward, 2 FLOPs per multiply-add (elementwise work is not counted)."""
    channels, heads, head_dim, layers, caption, text_tokens = 8, 2, 8, 2, 16, 5
    frames, height, width, batch = 4, 3, 2, 2
    with torch.device("meta"):
        net = A2VDiT(in_channels=channels, num_attention_heads=heads, attention_head_dim=head_dim,
                     num_layers=layers, audio_dim=DA, text=text, caption_channels=caption, cross_attention_dim=16,
                     text_tokens=text_tokens)
    flops = forward_flops(net, frames=frames, height=height, width=width, audio_tokens=HW, batch=batch)

    def linear(rows: int, fan_in: int, fan_out: int) -> int:
        return 2 * rows * fan_in * fan_out

    def attention(queries: int, keys: int) -> int:  # QK^T and AV over all heads
        return 2 * (2 * queries * keys * heads * head_dim)

    dim = heads * head_dim
    per_frame = height * width
    tokens, audio_tokens = frames * per_frame, (frames - 1) * HW
    sample = (linear(tokens, channels, dim)                                   # proj_in
              + linear(frames, 256, dim) + linear(frames, dim, dim)           # timestep MLP, once per frame
              + linear(frames, dim, 6 * dim)                                  # AdaLN-single
              + linear(audio_tokens, DA, dim) + linear(audio_tokens, dim, dim)  # audio projection
              + linear(tokens, dim, channels))                                # proj_out
    block = (4 * linear(tokens, dim, dim) + attention(tokens, tokens)         # self-attention: q, k, v, out
             + 2 * linear((frames - 1) * per_frame, dim, dim)                 # audio: q and out, frames 1..f-1
             + 2 * linear(audio_tokens, dim, dim)                             # audio: k and v of C
             + (frames - 1) * attention(per_frame, HW)                        # each frame to its own C_k
             + linear(tokens, dim, 4 * dim) + linear(tokens, 4 * dim, dim))   # feed-forward
    shared = 0
    if text == "null":  # text cross-attention to the learned context, projected once for the whole batch
        block += 2 * linear(tokens, dim, dim) + 2 * linear(text_tokens, dim, dim)
        block += attention(tokens, text_tokens)
        shared = linear(text_tokens, caption, dim) + linear(text_tokens, dim, dim)
    assert flops == batch * (sample + layers * block) + shared
