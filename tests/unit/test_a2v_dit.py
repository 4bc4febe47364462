"""A2V-DiT: LTX weights load by name and reproduce diffusers' LTX transformer; audio stays in its frame."""

import pytest
import torch
from diffusers import LTXVideoTransformer3DModel
from einops import rearrange, repeat

from readlit.errors import CheckpointError
from readlit.nn.a2v_dit import A2VDiT, forward_flops
from readlit.nn.ltx_init import load_ltx_transformer, load_ltx_weights, locate, read_weights

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


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, 8, F, H, W, generator=g)
    t = torch.rand(B, F, H, W, generator=g)  # per-token times
    t[:, 0] = 0.0
    text = torch.randn(B, 5, 16, generator=g)
    mask = torch.ones(B, 5)
    mask[1, 3:] = 0
    audio = torch.randn(B, F - 1, HW, DA, generator=g)
    return z, t, text, mask, audio


def test_ltx_weights_reproduce_diffusers(ltx_folder, caplog):
    ltx, folder = ltx_folder
    with caplog.at_level("INFO"):
        net = load_ltx_transformer(str(folder), subfolder=None, in_channels=8, audio_dim=DA, text="embeddings",
                                   rope_scale=ROPE_SCALE).eval()
    assert "new (fresh init)" in caplog.text and "attn_audio" in caplog.text and "audio_projection" in caplog.text
    z, t, text, mask, audio = inputs()
    with torch.no_grad():
        ours = net(z, t, audio, text=text, text_mask=mask)
        theirs = ltx(rearrange(z, "b c f h w -> b (f h w) c"), text, rearrange(t, "b f h w -> b (f h w)") * 1000,
                     mask, num_frames=F, height=H, width=W, rope_interpolation_scale=ROPE_SCALE).sample
    theirs = rearrange(theirs, "b (f h w) c -> b c f h w", f=F, h=H)
    error = (ours - theirs).abs().max().item()
    print(f"max |A2V-DiT - LTX| = {error:.2e}")
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


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


def test_audio_of_frame_k_reaches_only_frame_k():
    torch.manual_seed(0)
    net = A2VDiT(in_channels=8, num_attention_heads=2, attention_head_dim=8, num_layers=1, audio_dim=DA).eval()
    for block in net.transformer_blocks:  # a trained audio branch: the fresh one adds exactly nothing
        torch.nn.init.normal_(block.attn_audio.to_out[0].weight, std=0.2)
    block = net.transformer_blocks[0]
    z, t, _, _, audio = inputs()
    x = torch.randn(B, F * H * W, 16)
    temb = torch.randn(B, F * H * W, 6 * 16)
    rope = net.rope(torch.zeros(F * H * W, 3))
    changed = audio.clone()
    changed[:, 1] += 1.0  # C_2 belongs to latent frame 2
    with torch.no_grad():
        before = rearrange(block(x, temb, rope, net.audio_projection(audio), None, None), "b (f n) d -> b f n d", f=F)
        after = rearrange(block(x, temb, rope, net.audio_projection(changed), None, None), "b (f n) d -> b f n d",
                          f=F)
    difference = (after - before).abs().amax(dim=(0, 2, 3))
    assert difference[2] > 1e-3 and difference[0] == 0 and difference[1] == 0


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


def test_clips_sharing_a_frame_give_it_the_same_rope_position():
    from readlit.nn.rope import video_positions

    # clips of 3 latent frames overlapping by one start at latent frames 0 and 2 (ans_sampler.clip_starts)
    first, second = video_positions(4, 1, 1, frame_offset=0), video_positions(4, 1, 1, frame_offset=2)
    assert first[-1, 0] == second[1, 0] == 3 and first[0, 0] == second[0, 0] == 0


def test_flops_on_meta_device():
    with torch.device("meta"):
        net = A2VDiT(in_channels=8, num_attention_heads=2, attention_head_dim=8, num_layers=2, audio_dim=DA)
    assert forward_flops(net, frames=3, height=4, width=4, audio_tokens=HW) > 0
