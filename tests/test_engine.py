"""The engine against diffusers' reference pipeline, seeds, ranking, cancellation and loading."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from musicldm_core.engine import Engine, RenderItem
from musicldm_core.errors import Cancelled, ModelError, WeightsNotFound
from musicldm_core.loading import load_components, resolve_source
from musicldm_core.schedulers import prepare_scheduler, schedule_problem
from musicldm_core.spec import DEFAULT_NEGATIVE_PROMPT, LIMITS, SCHEDULER_NAMES

PROMPTS = ["warm lofi piano", "dark techno, 909 drums"]


def _reference_pipeline(engine: Engine, scheduler: str):
    pipe = engine.reference_pipeline(scheduler)
    if pipe is None:
        pytest.skip("this diffusers no longer ships MusicLDMPipeline: nothing to compare against")
    return pipe


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++", "unipc"])
def test_engine_equals_the_upstream_pipeline(tiny_engine, scheduler):
    """Same components, embeddings, seeds, scheduler and steps: the same waveform."""
    pipe = _reference_pipeline(tiny_engine, scheduler)
    seeds = [3, 11]
    positive = tiny_engine.encode_text(PROMPTS)
    negative = tiny_engine.encode_text([DEFAULT_NEGATIVE_PROMPT] * 2)
    reference = pipe(
        prompt_embeds=positive,
        negative_prompt_embeds=negative,
        audio_length_in_s=2.0,
        num_inference_steps=8,
        guidance_scale=2.5,
        generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
        output_type="np",
    ).audios
    ours = tiny_engine.generate(
        [
            RenderItem(p, DEFAULT_NEGATIVE_PROMPT, 2.5, (s,))
            for p, s in zip(PROMPTS, seeds, strict=True)
        ],
        frames=200,
        steps=8,
        scheduler=scheduler,
    )
    engine_audio = np.stack([takes[0].waveform[:32000] for takes in ours])
    assert reference.shape == engine_audio.shape == (2, 32000)
    assert np.abs(reference).max() > 1e-2, "the test model must make a real signal to compare"
    assert np.abs(reference - engine_audio).max() < 1e-4


def test_take_is_the_same_whatever_shares_the_batch(tiny_engine):
    alone = tiny_engine.generate(
        [RenderItem("soft pads", "", 2.0, (42,))], frames=64, steps=4, scheduler="dpm++"
    )[0][0]
    crowded = tiny_engine.generate(
        [
            RenderItem("busy drums", "", 3.0, (7,)),
            RenderItem("soft pads", "", 2.0, (40, 41, 42)),
        ],
        frames=64,
        steps=4,
        scheduler="dpm++",
        rank=False,
    )
    same = crowded[1][2]
    assert same.seed == 42
    assert np.abs(alone.waveform - same.waveform).max() < 1e-4
    other = crowded[1][0]
    assert np.abs(alone.waveform - other.waveform).max() > 1e-3  # another seed differs


def test_seeds_for_takes_wrap_around():
    assert RenderItem.seeds_for(5, 3) == (5, 6, 7)
    assert RenderItem.seeds_for(2**31 - 1, 2) == (2**31 - 1, 0)


def test_each_prompt_is_ranked_against_its_own_takes(tiny_engine):
    items = [
        RenderItem(PROMPTS[0], "", 2.0, RenderItem.seeds_for(100, 3)),
        RenderItem(PROMPTS[1], "", 2.0, RenderItem.seeds_for(200, 3)),
    ]
    results = tiny_engine.generate(items, frames=64, steps=3, scheduler="ddim")
    for item, takes in zip(items, results, strict=True):
        assert sorted(t.seed for t in takes) == sorted(item.seeds)  # no take from another prompt
        scores = [t.score for t in takes]
        assert all(s is not None for s in scores)
        assert scores == sorted(scores, reverse=True)
        # The scores are this prompt's similarity to its own takes, computed on their own.
        again = tiny_engine.score(item.prompt, [t.waveform for t in takes])
        assert np.allclose(scores, again, atol=1e-5)


def test_cancellation_stops_between_steps(tiny_engine):
    steps_seen = []

    def on_step(step, total):
        steps_seen.append((step, total))

    with pytest.raises(Cancelled):
        tiny_engine.generate(
            [RenderItem("x", "", 2.0, (1,))],
            frames=64,
            steps=10,
            scheduler="ddim",
            on_step=on_step,
            is_cancelled=lambda: len(steps_seen) >= 3,
        )
    assert steps_seen == [(1, 10), (2, 10), (3, 10)]


def test_text_embeddings_are_cached_and_padding_free(tiny_engine, monkeypatch):
    calls = []
    encode = tiny_engine.text_encoder.get_text_features

    def counting(**kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return encode(**kwargs)

    monkeypatch.setattr(tiny_engine.text_encoder, "get_text_features", counting)
    hits, misses = tiny_engine.text_cache_stats
    a = tiny_engine.encode_text(["a cached prompt"])
    b = tiny_engine.encode_text(["a cached prompt"])
    assert calls == [1]  # the second call is served from the cache, not the text encoder
    assert tiny_engine.text_cache_stats == (hits + 1, misses + 1)
    assert torch.equal(a, b)
    # Padding to the longest prompt of a batch does not change an embedding.
    alone = tiny_engine.encode_text(["pad me"])[0]
    fresh = Engine(tiny_engine.components)
    together = fresh.encode_text(["pad me", "a much longer prompt that forces padding"])[0]
    assert torch.allclose(alone, together, atol=1e-6)


@pytest.mark.parametrize("scheduler", SCHEDULER_NAMES)
def test_every_scheduler_renders(tiny_engine, scheduler):
    takes = tiny_engine.generate(
        [RenderItem("x", "", 2.0, (1,))], frames=32, steps=2, scheduler=scheduler
    )
    wave = takes[0][0].waveform
    assert wave.shape == (32 * 160,)
    assert np.isfinite(wave).all()


def test_unknown_scheduler_is_a_bad_request(tiny_engine):
    from musicldm_core.errors import BadRequest

    with pytest.raises(BadRequest, match="scheduler must be one of"):
        tiny_engine.generate([RenderItem("x", "", 2.0, (1,))], frames=32, steps=2, scheduler="x")


def test_loading_errors_say_what_to_do(tmp_path, model_cache):
    with pytest.raises(ModelError, match=r"model_index\.json is missing"):
        resolve_source(str(tmp_path))
    with pytest.raises(ModelError, match="neither a folder"):
        resolve_source("./no/such/folder")
    with pytest.raises(WeightsNotFound, match=r"--model"):
        resolve_source("nobody/not-a-model-here")
    # A folder missing a component names it.
    folder = tmp_path / "broken"
    shutil.copytree(resolve_source("tiny", cache_dir=model_cache), folder)
    shutil.rmtree(folder / "vocoder")
    with pytest.raises(ModelError, match="vocoder"):
        load_components(str(folder), device="cpu")


def test_the_real_checkpoint_dtype_is_overridden(tmp_path, model_cache):
    """The checkpoint's CLAP config says float64; the loader must load float32 anyway."""
    folder = tmp_path / "f64"
    shutil.copytree(resolve_source("tiny", cache_dir=model_cache), folder)
    config_path = folder / "text_encoder" / "config.json"
    config = json.loads(config_path.read_text())
    config["torch_dtype"] = "float64"
    config["dtype"] = "float64"
    config_path.write_text(json.dumps(config))
    components = load_components(str(folder), device="cpu")
    assert next(components.text_encoder.parameters()).dtype == torch.float32
    assert next(components.unet.parameters()).dtype == torch.float32


@pytest.mark.slow
def test_compiled_unet_renders_what_the_eager_one_does():
    """The optional torch.compile fast path (``--compile``) changes speed, not audio."""
    engine = Engine.load("tiny", device="cpu")
    items = [RenderItem("compiled or not", "", 2.0, (4, 5))]
    eager = engine.generate(items, frames=200, steps=4, scheduler="dpm++", rank=False)[0]
    engine.compile()
    assert engine.describe()["compiled"] == "default"
    compiled = engine.generate(items, frames=200, steps=4, scheduler="dpm++", rank=False)[0]
    for a, b in zip(eager, compiled, strict=True):
        assert a.seed == b.seed
        assert np.max(np.abs(a.waveform - b.waveform)) < 1e-4
    engine.decompile()
    again = engine.generate(items, frames=200, steps=4, scheduler="dpm++", rank=False)[0]
    assert np.array_equal(again[0].waveform, eager[0].waveform)


def test_attention_runs_through_pytorch_sdpa(tiny_engine):
    """Every attention layer uses torch's fused scaled_dot_product_attention (fast path)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    for model in (tiny_engine.components.unet, tiny_engine.vae):
        kinds = {type(p) for p in model.attn_processors.values()}
        assert kinds == {AttnProcessor2_0}


# --- the whole steps range ------------------------------------------------------------------------

TOP_STEPS = int(LIMITS["steps"].hi)


@pytest.mark.parametrize("scheduler", SCHEDULER_NAMES)
def test_every_scheduler_has_a_sound_schedule_over_the_documented_range(tiny_engine, scheduler):
    """Timesteps inside the training range 0..999, none repeated, for 1..1000 steps (1000 and
    999 failed with IndexError/AssertionError/NaN before)."""
    config = tiny_engine.components.scheduler_config
    for steps in (1, 2, 3, 20, 200, 333, 500, 501, 600, 997, 998, 999, TOP_STEPS):
        sampler = prepare_scheduler(scheduler, config, steps)
        assert schedule_problem(scheduler, sampler, steps) is None, steps
        timesteps = sampler.timesteps.tolist()
        assert len(timesteps) == (2 * steps - 1 if scheduler == "heun" else steps)
        assert max(timesteps) <= 999 and min(timesteps) >= 0
    # Below 999 steps every sampler keeps the checkpoint's own (upstream) schedule.
    assert prepare_scheduler(scheduler, config, 200).config.timestep_spacing == "leading"


@pytest.mark.parametrize("scheduler", SCHEDULER_NAMES)
@pytest.mark.parametrize("steps", [999, TOP_STEPS])
def test_every_scheduler_steps_to_the_end_at_the_top_of_the_range(tiny_engine, scheduler, steps):
    """The solver's own arithmetic over all its steps (a stand-in model output instead of the
    UNet, to keep it cheap) stays finite and never steps off its tables."""
    sampler = prepare_scheduler(scheduler, tiny_engine.components.scheduler_config, steps)
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn((1, 8, 1, 16), generator=generator) * sampler.init_noise_sigma
    prediction = torch.randn((1, 8, 1, 16), generator=generator)
    for t in sampler.timesteps:
        model_input = sampler.scale_model_input(latents, t)
        assert torch.isfinite(model_input).all()
        latents = sampler.step(prediction, t, latents).prev_sample
    assert torch.isfinite(latents).all()


def test_a_render_at_the_most_steps_allowed(tiny_engine):
    steps_seen = []
    takes = tiny_engine.generate(
        [RenderItem("x", "", 1.0, (5,))],
        frames=4,
        steps=TOP_STEPS,
        scheduler="dpm++",
        on_step=lambda step, total: steps_seen.append((step, total)),
    )
    wave = takes[0][0].waveform
    assert wave.shape == (4 * 160,)
    assert np.isfinite(wave).all() and np.abs(wave).max() > 0
    assert steps_seen[-1] == (TOP_STEPS, TOP_STEPS) and len(steps_seen) == TOP_STEPS


# --- non-finite output ---------------------------------------------------------------------------


def _nan_like(module):
    class Poisoned(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module
            self.config = module.config

        def forward(self, *args, **kwargs):
            out = self.inner(*args, **kwargs)
            if isinstance(out, tuple):
                return (out[0] * torch.nan, *out[1:])
            return out * torch.nan

    return Poisoned()


def test_a_unet_returning_nan_is_a_model_error_naming_the_stage(tiny_engine, monkeypatch):
    monkeypatch.setattr(tiny_engine, "unet", _nan_like(tiny_engine.unet))
    with pytest.raises(ModelError, match=r"non-finite.*latents after the unipc sampler at 3 steps"):
        tiny_engine.generate(
            [RenderItem("x", "", 2.0, (1,))], frames=32, steps=3, scheduler="unipc"
        )


def test_a_vocoder_returning_nan_is_a_model_error_naming_the_stage(tiny_engine, monkeypatch):
    monkeypatch.setattr(tiny_engine, "vocoder", _nan_like(tiny_engine.vocoder))
    with pytest.raises(ModelError, match=r"non-finite.*vocoder.*ddim sampler at 2 steps"):
        tiny_engine.generate([RenderItem("x", "", 2.0, (1,))], frames=32, steps=2, scheduler="ddim")


class _Failing(torch.nn.Module):
    def __init__(self, module, error):
        super().__init__()
        self.inner = module
        self.config = module.config
        self.error = error

    def forward(self, *args, **kwargs):
        raise self.error


@pytest.mark.parametrize("entry", ["generate", "denoise"])
def test_device_memory_running_out_is_out_of_memory_and_a_torch_error_a_model_error(
    tiny_engine, monkeypatch, entry
):
    from musicldm_core.errors import OutOfMemory

    run = getattr(tiny_engine, entry)
    item = RenderItem("x", "", 2.0, (1, 2))
    monkeypatch.setattr(
        tiny_engine, "unet", _Failing(tiny_engine.unet, torch.OutOfMemoryError("CUDA oom"))
    )
    with pytest.raises(OutOfMemory, match=r"ran out of memory for 2 takes of 0\.32 s"):
        run([item], frames=32, steps=2, scheduler="ddim")
    monkeypatch.setattr(tiny_engine, "unet", _Failing(tiny_engine.unet.inner, RuntimeError("boom")))
    with pytest.raises(ModelError, match="the model failed: boom"):
        run([item], frames=32, steps=2, scheduler="ddim")


# --- missing weights ------------------------------------------------------------------------------


def _copy_without(model_cache, tmp_path, component: str, *keys: str):
    folder = tmp_path / "model"
    shutil.copytree(resolve_source("tiny", cache_dir=model_cache), folder)
    (weights,) = (folder / component).glob("*.safetensors")
    tensors = load_file(weights)
    for key in keys:
        del tensors[key]
    save_file(tensors, weights, metadata={"format": "pt"})
    return folder


@pytest.mark.parametrize(
    ("component", "key"),
    [
        ("unet", "conv_in.weight"),
        ("vae", "decoder.conv_out.bias"),
        ("text_encoder", "text_model.embeddings.word_embeddings.weight"),
        ("vocoder", "mean"),  # a buffer, but a trained one: without it the mel is not normalised
    ],
)
def test_a_checkpoint_missing_a_tensor_is_refused(tmp_path, model_cache, component, key):
    folder = _copy_without(model_cache, tmp_path, component, key)
    with pytest.raises(ModelError, match=rf"the {component} checkpoint .* lacks 1 tensor.*{key}"):
        load_components(str(folder), device="cpu")


def test_a_checkpoint_without_rebuilt_buffers_loads(tmp_path, model_cache):
    """position_ids and the like are rebuilt by the model itself: their absence is harmless."""
    folder = _copy_without(
        model_cache,
        tmp_path,
        "text_encoder",
        "text_model.embeddings.position_ids",
        "text_model.embeddings.token_type_ids",
    )
    components = load_components(str(folder), device="cpu")
    embeddings = components.text_encoder.text_model.embeddings
    assert torch.equal(embeddings.position_ids[0, :4], torch.arange(4))
    # and the intact model loads with every tensor from its files
    intact = load_components(str(resolve_source("tiny", cache_dir=model_cache)), device="cpu")
    assert intact.unet.conv_in.weight.abs().sum() > 0
