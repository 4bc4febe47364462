"""Config values at the boundary: the type and range checks, and how a message's parameter becomes a config key."""

import math
import os

import numpy as np
import pytest
from omegaconf import OmegaConf

from readlit import checks
from readlit.cli import source_key, user_error
from readlit.errors import ConfigError, renamed, scope
from readlit.resolvers import unique_dir


@pytest.mark.parametrize(("check", "value", "message"), [
    (lambda v: checks.integer("n", v, minimum=1), 0, "n=0 must be at least 1"),
    (lambda v: checks.integer("n", v), "abc", "n=abc must be a whole number"),
    (lambda v: checks.integer("n", v), 1.5, "n=1.5 must be a whole number"),
    (lambda v: checks.integer("n", v), True, "n=True must be a whole number"),
    (lambda v: checks.integer("n", v, maximum=3), 4, "n=4 must be at most 3"),
    (lambda v: checks.number("x", v), math.nan, "x=nan must be a finite number"),
    (lambda v: checks.number("x", v), math.inf, "x=inf must be a finite number"),
    (lambda v: checks.number("x", v, above=0.0), 0.0, "x=0.0 must be above 0.0"),
    (lambda v: checks.probability("p", v), 1.5, "p=1.5 must be at most 1.0"),
    (lambda v: checks.flag("f", v), "maybe", "f=maybe must be true or false"),
    (lambda v: checks.choice("c", v, ("a", "b")), "z", "c=z is not one of a, b"),
])
def test_a_bad_value_is_refused_naming_the_parameter(check, value, message):
    with pytest.raises(ConfigError) as info:
        check(value)
    assert str(info.value) == message


def test_good_values_come_back_as_their_type():
    assert checks.integer("n", np.int64(3), minimum=1) == 3 and type(checks.integer("n", np.int64(3))) is int
    assert checks.number("x", 2) == 2.0 and checks.probability("p", 0) == 0.0
    assert checks.flag("f", False) is False and checks.choice("c", "b", ("a", "b")) == "b"


def test_writable_folder_writes_to_find_out(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert checks.writable_folder("out", tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists() and sorted(os.listdir(tmp_path)) == ["afile"]
    with pytest.raises(ConfigError, match=r"^out=.*afile/x: cannot write into .*afile: it is a file$"):
        checks.writable_folder("out", tmp_path / "afile" / "x")
    with pytest.raises(ConfigError, match=r"^out=/proc/x.mp4: cannot write into /proc"):
        checks.writable_folder("out", "/proc/x.mp4", "/proc")


def test_unique_dir_gives_each_caller_its_own_folder(tmp_path):
    base = str(tmp_path / "runs" / "2026-01-01_00-00-00")
    made = [unique_dir(base) for _ in range(3)]
    assert made == [base, base + "_1", base + "_2"] and all(os.path.isdir(path) for path in made)


def test_scope_and_renamed_name_the_parameter():
    with pytest.raises(ConfigError, match=r"^net\.text=x is bad$"), scope("net"):
        raise ConfigError("text=x is bad")
    with pytest.raises(ConfigError, match=r"^latents\.out_dir=/a holds$"), renamed("out_dir", "latents.out_dir"):
        raise ConfigError("out_dir=/a holds")


CFG = OmegaConf.create({
    "vae": {"pretrained": None, "tile_frames": 4, "seed": 0},
    "audio": {"window_tokens": 10, "fps": 25, "seed": 0},
    "data": {"audio_frontend": "${audio}", "fps": 25, "seed": 0},
    "model": {"vae": "${vae}", "frontend": "${audio}", "ans": {"sigma": 1.0}},
    "seed": 1,
})


@pytest.mark.parametrize(("key", "expected"), [
    ("model.vae.pretrained", "vae.pretrained"),
    ("model.frontend.window_tokens", "audio.window_tokens"),
    ("data.audio_frontend.fps", "audio.fps"),
    ("model.ans.sigma", "model.ans.sigma"),
])
def test_a_node_that_references_another_is_named_by_it(key, expected):
    assert source_key(CFG, key) == expected


@pytest.mark.parametrize(("message", "expected"), [
    ("window_tokens=5 must be even", "audio.window_tokens=5 must be even"),  # one node has it: named by it
    ("audio_frontend.fps=7 must divide", "audio.fps=7 must divide"),
    ("tile_frames=0 must be at least 1", "vae.tile_frames=0 must be at least 1"),
    ("fps=7 must divide", "fps=7 must divide"),  # data.fps and audio.fps: left as it is, not guessed
    ("seed=x must be", "seed=x must be"),  # the top-level key
])
def test_a_message_raised_at_run_time_is_named_by_the_one_node_with_its_parameter(message, expected):
    assert user_error(ConfigError(message), CFG) == expected
