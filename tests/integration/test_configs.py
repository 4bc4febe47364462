"""Every experiment composes and instantiates; the resolvers and monitors line up."""

import pytest
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from readlit.cli import CONFIG_DIR, user_error
from readlit.errors import CheckpointError, DataError
from readlit.utils.instantiators import instantiate_group
from tests.helpers import load_experiment

STAGES = load_experiment("demo").STAGES

EXPERIMENTS = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml"))
# Experiments on datasets this machine has no cache for: their datamodule must refuse clearly.
NEEDS_DATA = {"speechae": "holds no HDTF cache", "vae_finetune_hdtf": "holds no HDTF cache",
              "a2v_hdtf": "holds no HDTF cache", "a2v_mead": "holds no MEAD cache"}
# Experiments built on pretrained weights this machine cannot fetch: the model must refuse with the config key,
# and build with these tiny random stand-ins instead.
# The a2v experiments also need the LTX transformer and a SpeechAE checkpoint (tests/integration/test_a2v_stage.py).
A2V_STAND_INS = ["vae=tiny", "model/net=tiny", "model.audio_encoder=linear", "model.speechae_ckpt=null"]
NEEDS_WEIGHTS = {"vae_finetune_hdtf": ("vae.pretrained='Lightricks/LTX-Video'", ["vae=tiny"]),
                 "a2v_hdtf": ("vae.pretrained='Lightricks/LTX-Video'", A2V_STAND_INS),
                 "a2v_mead": ("vae.pretrained='Lightricks/LTX-Video'", A2V_STAND_INS),
                 "demo_a2v": ("model.speechae_ckpt=", ["model.audio_encoder=linear", "model.speechae_ckpt=null"])}
# The later phases of the demo VAE start from the export of the phase before, which they require (vae.pretrained=???);
# the shipped demo VAE stands in for it.
SHIPPED_DEMO_VAE = "vae.pretrained=${project_root:}/assets/demo_vae_decoder/vae"
NEEDS_PREVIOUS_PHASE = {"demo_vae_mouth", "demo_vae_long", "demo_vae_decoder"}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_instantiates(train_cfg, experiment):
    # the paper experiments ask for a GPU; everything else about their trainer is kept
    cfg = train_cfg(f"experiment={experiment}", "trainer.accelerator=cpu")
    if experiment in NEEDS_PREVIOUS_PHASE:
        with pytest.raises(MissingMandatoryValue) as info:
            instantiate(cfg.model)
        assert "vae.pretrained is required" in user_error(info.value)
        cfg = train_cfg(f"experiment={experiment}", "trainer.accelerator=cpu", SHIPPED_DEMO_VAE)
    if experiment in NEEDS_WEIGHTS:
        message, stand_ins = NEEDS_WEIGHTS[experiment]
        with pytest.raises(HydraException) as info:
            instantiate(cfg.model)
        assert isinstance(info.value.__cause__, CheckpointError) and message in user_error(info.value)
        cfg = train_cfg(f"experiment={experiment}", "trainer.accelerator=cpu", *stand_ins)
    model = instantiate(cfg.model)
    trainer = instantiate(cfg.trainer, callbacks=instantiate_group(cfg.callbacks),
                          logger=instantiate_group(cfg.logger))
    assert trainer.checkpoint_callback.monitor == cfg.monitor.metric == cfg.optimized_metric
    assert getattr(model, "stage", None)
    if experiment in NEEDS_DATA:
        with pytest.raises(HydraException) as info:  # instantiate wraps the DataError
            instantiate(cfg.data)
        assert isinstance(info.value.__cause__, DataError)
        assert NEEDS_DATA[experiment] in user_error(info.value)
    else:
        instantiate(cfg.data)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_instantiates_on_synthetic_data(train_cfg, experiment):
    """The paper-scale experiments build end to end when pointed at the synthetic data instead."""
    stand_ins = NEEDS_WEIGHTS.get(experiment, (None, []))[1]
    if experiment in NEEDS_PREVIOUS_PHASE:
        stand_ins = [*stand_ins, SHIPPED_DEMO_VAE]
    cfg = train_cfg(f"experiment={experiment}", "data=synthetic", "trainer=cpu", *stand_ins)
    instantiate(cfg.data)
    instantiate(cfg.model)


def test_speechae_shapes_follow_the_audio_config(train_cfg):
    cfg = train_cfg("experiment=speechae")
    assert cfg.model.net.in_tokens == 10 * 5 and cfg.model.net.in_dim == 384
    cfg = train_cfg("experiment=demo_speechae")
    assert cfg.model.net.in_tokens == 10 * 3 and cfg.model.net.in_dim == 64


def test_each_later_demo_vae_phase_is_given_the_export_it_requires(train_cfg):
    """make demo ARGS=--retrain passes every phase after the first the export of the one before."""
    first, *later = STAGES["vae"]
    assert first == ("demo_vae", ()) and train_cfg("experiment=demo_vae").vae.pretrained is None
    assert all("vae.pretrained={previous}/vae" in overrides for _, overrides in later)
    assert {experiment for experiment, _ in later} == NEEDS_PREVIOUS_PHASE
    for experiment in NEEDS_PREVIOUS_PHASE:
        assert OmegaConf.is_missing(train_cfg(f"experiment={experiment}").vae, "pretrained")
