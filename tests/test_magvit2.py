"""magvit2-pytorch checkpoints: our implementation reproduces the real package, and bad input is refused.

How the fixtures were made (tests/fixtures/magvit2/, 1.8 MB): by tests/fixtures/magvit2/make_fixtures.py,
run with the REAL package magvit2-pytorch 0.5.1 (vector-quantize-pytorch 1.32.0, torch 2.13.0 CPU) in
a scratch venv outside the project (/tmp/m2venv; see the script's docstring for the commands and the
torchvision stub it needs). For each of fsq_small, lfq_small, lfq_sphere the package's own
VideoTokenizer.save() wrote the .pt (model_state_dict, version, pickled config), and *_io.safetensors
holds fixed input videos (uint8, the model sees u8/255, layout (B, 3, T, H, W)) with the package's
own outputs: `tokenize()` indices, `encode()` features, `decode_from_code_indices()` frames (checked
equal to forward()'s). seed_handwritten.pt is the seed project's model (preset seed-2026-01) written
the seed's way by torch.save({'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'}), no config,
weights in float16, most of the discriminator dropped for size.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from magtask.errors import MagtaskError
from magtask.tokenizer import safe_pickle
from magtask.tokenizer.magvit2 import Magvit2Tokenizer, normalize_config
from magtask.tokenizer.magvit2_load import (FORMAT, PRESETS, convert, is_magvit2_checkpoint, load_converted,
                                            load_magvit2, magvit2_hash)

FIX = Path(__file__).parent / "fixtures" / "magvit2"
CASES = [("fsq_small", None, "main"), ("fsq_small", None, "nofirst"), ("lfq_small", None, "main"),
         ("lfq_small", None, "nofirst"), ("lfq_sphere", None, "main"), ("seed_handwritten", "seed-2026-01", "main")]


def _io(name: str):
    tensors = load_file(str(FIX / f"{name}_io.safetensors"))
    with safe_open(str(FIX / f"{name}_io.safetensors"), "pt") as f:
        meta = f.metadata()
    return tensors, meta


def _model(name: str, config, key: str) -> Magvit2Tokenizer:
    model = load_magvit2(FIX / f"{name}.pt", config)
    _, meta = _io(name)
    if meta[f"{key}.video_contains_first_frame"] == "false":
        model = load_magvit2(FIX / f"{name}.pt", {**model.config, "video_contains_first_frame": False})
    return model


@pytest.mark.parametrize("name,config,key", CASES)
def test_reproduces_the_package(name, config, key):
    io, _ = _io(name)
    model = _model(name, config, key)
    video = io[f"{key}.video_u8"].float() / 255  # (B, 3, T, H, W): the package's layout
    ours = video.permute(0, 2, 1, 3, 4)  # magtask's (B, T, 3, H, W)
    with torch.no_grad():
        codes, indices = model.quantize(model.encode(ours))
        from_indices = model.decode_raw(model.indices_to_codes(indices)).permute(0, 2, 1, 3, 4)
        from_codes = model.decode_raw(codes).permute(0, 2, 1, 3, 4)
        clamped = model.decode(indices)
    want = io[f"{key}.indices"].long()
    assert indices.shape == want.shape
    assert torch.equal(indices, want), f"{(indices != want).sum()} of {want.numel()} codes differ"
    assert (from_indices - io[f"{key}.recon"]).abs().max() <= 1e-5
    assert (from_codes - io[f"{key}.recon"]).abs().max() <= 1e-5
    assert torch.equal(clamped, from_indices.permute(0, 2, 1, 3, 4).clamp(0, 1))
    if f"{key}.features" in io:
        assert (model.features(video) - io[f"{key}.features"]).abs().max() <= 1e-5
    # the API's shapes
    b, t_frames = ours.shape[:2]
    assert indices.shape == (b, *model.latent_shape(t_frames, ours.shape[-1])[1:])
    assert codes.shape == (b, *model.latent_shape(t_frames, ours.shape[-1]))
    assert model.tokenize(ours).equal(indices)


def test_seed_preset_and_geometry():
    model = load_magvit2(FIX / "seed_handwritten.pt", "seed-2026-01")
    assert model.card["weights"] == "model_state_dict" and model.card["config_source"] == "preset seed-2026-01"
    assert (model.temporal_stride, model.spatial_stride, model.codebook_size, model.latent_channels) == (1, 1, 1000, 4)
    assert model.latent_shape(16, 64) == (4, 16, 64, 64)
    assert model.causal is True
    assert json.loads(json.dumps(model.config)) == model.config  # JSON-able (hashed, stored in metadata)


def test_checkpoint_config_is_read_and_geometry_follows_it():
    model = load_magvit2(FIX / "fsq_small.pt")
    assert model.card["config_source"] == "checkpoint config" and model.card["package_version"] == "0.5.1"
    assert (model.temporal_stride, model.spatial_stride) == (2, 2)
    assert model.latent_shape(17, 16) == (4, 9, 8, 8)
    with pytest.raises(MagtaskError, match="1 \\+ a multiple of its temporal stride 2.*video_contains_first_frame"):
        model.latent_shape(16, 16)
    nofirst = Magvit2Tokenizer({**model.config, "video_contains_first_frame": False})
    assert nofirst.latent_shape(16, 16) == (4, 8, 8, 8)


def test_no_config_needs_one():
    with pytest.raises(MagtaskError, match="carries no config.*seed-2026-01") as e:
        load_magvit2(FIX / "seed_handwritten.pt")
    assert "\n" not in str(e.value)


def test_config_from_json_file(tmp_path):
    cfg = tmp_path / "seed.json"
    cfg.write_text(json.dumps(PRESETS["seed-2026-01"]))
    model = load_magvit2(FIX / "seed_handwritten.pt", cfg)
    assert model.card["config_source"] == str(cfg)
    with pytest.raises(MagtaskError, match="neither a preset"):
        load_magvit2(FIX / "seed_handwritten.pt", tmp_path / "nope.json")


# -- the restricted unpickler ----------------------------------------------------------------------

class _Boom:
    def __reduce__(self):
        return (os.system, ("touch should-not-exist",))


class _Marker:
    pass


def test_pickle_with_disallowed_global_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(safe_pickle.UnsafePickleError, match="system"):
        safe_pickle.loads(pickle.dumps(_Boom()))
    with pytest.raises(safe_pickle.UnsafePickleError, match="_Marker"):
        safe_pickle.loads(pickle.dumps({"x": _Marker()}))
    with pytest.raises(safe_pickle.UnsafePickleError, match="builtins.eval"):
        safe_pickle.loads(b"cbuiltins\neval\n(S'1+1'\ntR.")
    assert not (tmp_path / "should-not-exist").exists()


def test_checkpoint_whose_config_asks_for_a_global_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pkg = safe_pickle.torch_load(FIX / "fsq_small.pt")
    pkg["config"] = pickle.dumps({"image_size": 16, "oops": _Boom()})
    torch.save(pkg, tmp_path / "evil.pt")
    with pytest.raises(MagtaskError, match="evil.pt: config: refused to unpickle global '(posix|nt).system'"):
        load_magvit2(tmp_path / "evil.pt")
    # and the outer pickle too: an object torch.save pickles by reference
    torch.save({"model_state_dict": pkg["model_state_dict"], "hook": _Boom()}, tmp_path / "evil2.pt")
    with pytest.raises(MagtaskError, match="refused to unpickle global"):
        load_magvit2(tmp_path / "evil2.pt", "seed-2026-01")
    assert not (tmp_path / "should-not-exist").exists()


def test_package_config_pickle_becomes_plain_data():
    raw = safe_pickle.torch_load(FIX / "fsq_small.pt")["config"]
    cfg = safe_pickle.plain(safe_pickle.loads(raw))
    assert cfg["vgg_weights"] == "<torchvision.models.vgg.VGG16_Weights>"
    assert cfg["lfq_activation"] == "<torch.nn.modules.linear.Identity>"
    assert cfg["fsq_levels"] == [8, 5, 5, 5] and cfg["max_dim"] == float("inf")
    assert normalize_config(cfg)["layers"][2] == ["consecutive_residual", 2]


def test_config_with_allowed_module_object_in_outer_pickle(tmp_path):
    # a hand-made checkpoint whose config dict holds an nn.Module directly (not as bytes): loads, inert
    pkg = safe_pickle.torch_load(FIX / "lfq_sphere.pt")
    cfg = safe_pickle.loads(pkg["config"])
    assert isinstance(cfg["lfq_activation"], safe_pickle.Opaque)
    cfg = {k: v for k, v in safe_pickle.plain(cfg).items()}
    cfg["lfq_activation"] = torch.nn.Identity()
    torch.save({"model_state_dict": pkg["model_state_dict"], "config": cfg}, tmp_path / "c.pt")
    model = load_magvit2(tmp_path / "c.pt")
    assert model.codebook_size == 16


# -- state dict vs config --------------------------------------------------------------------------

def test_state_dict_not_matching_config_names_keys(tmp_path):
    sd = safe_pickle.torch_load(FIX / "seed_handwritten.pt")["model_state_dict"]
    sd = dict(sd)
    sd.pop("conv_out.conv.bias")
    sd["encoder_layers.9.weight"] = torch.zeros(3)
    torch.save({"epoch": 1, "model_state_dict": sd}, tmp_path / "bad.pt")
    with pytest.raises(MagtaskError) as e:
        load_magvit2(tmp_path / "bad.pt", "seed-2026-01")
    msg = str(e.value)
    assert "missing keys conv_out.conv.bias" in msg and "unexpected keys encoder_layers.9.weight" in msg
    assert "\n" not in msg
    # right keys, wrong config: shapes named
    with pytest.raises(MagtaskError, match="shape mismatch conv_in.conv.weight"):
        load_magvit2(FIX / "seed_handwritten.pt", {**PRESETS["seed-2026-01"], "init_dim": 32})
    # another layer list: keys named
    with pytest.raises(MagtaskError, match="missing keys .*decoder_layers.2"):
        load_magvit2(FIX / "seed_handwritten.pt", {**PRESETS["seed-2026-01"], "layers": ["residual"] * 3})


def test_discriminator_keys_are_ignored(tmp_path):
    sd = safe_pickle.torch_load(FIX / "fsq_small.pt")["model_state_dict"]
    assert any(k.startswith("discr.") for k in sd)
    no_discr = {k: v for k, v in sd.items() if not k.startswith("discr.")}
    torch.save(no_discr, tmp_path / "bare.pt")  # a bare state dict, no discriminator at all
    a = load_magvit2(FIX / "fsq_small.pt")
    b = load_magvit2(tmp_path / "bare.pt", a.config)
    assert magvit2_hash(a) == magvit2_hash(b)


def test_unsupported_layer_kind_is_one_line():
    for layers in (["residual", "attend_space", "gateloop_time"], [["cond_residual"]], ["mystery"]):
        with pytest.raises(MagtaskError) as e:
            Magvit2Tokenizer({"image_size": 16, "layers": layers, "use_fsq": True, "fsq_levels": [5, 5]})
        msg = str(e.value)
        assert "layer kinds not supported" in msg and layers[-1 if isinstance(layers[-1], str) else 0][0] in msg
        assert "\n" not in msg
    with pytest.raises(MagtaskError, match="layer kinds not supported: attend_time"):
        load_magvit2(FIX / "fsq_small.pt", {**PRESETS["seed-2026-01"], "layers": ["residual", "attend_time"]})


def test_other_unsupported_settings_are_one_line():
    base = {"image_size": 16, "layers": ["residual"], "use_fsq": True, "fsq_levels": [5, 5]}
    for extra, pattern in (({"num_codebooks": 2}, "num_codebooks"), ({"dim_cond": 8}, "dim_cond"),
                           ({"use_fsq": False, "fsq_levels": None, "codebook_size": 100}, "power of two"),
                           ({"channels": 1}, "RGB")):
        with pytest.raises(MagtaskError, match=pattern):
            Magvit2Tokenizer({**base, **extra})


# -- checkpoints saved on a GPU --------------------------------------------------------------------

def _save_with_cuda_location(obj, path):
    """torch.save as if every tensor lived on cuda:0 (the storage location tag in the pickle)."""
    from torch import serialization

    def tagger(storage):
        return "cuda:0"

    entry = (-100, tagger, lambda obj, location: None)
    serialization._package_registry.insert(0, entry)
    try:
        torch.save(obj, path)
    finally:
        serialization._package_registry.remove(entry)


def test_gpu_saved_checkpoint_loads_on_cpu(tmp_path):
    pkg = safe_pickle.torch_load(FIX / "fsq_small.pt")
    _save_with_cuda_location(pkg, tmp_path / "gpu.pt")
    with zipfile.ZipFile(tmp_path / "gpu.pt") as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    assert b"cuda:0" in pkl and b"cpu" not in pkl
    if not torch.cuda.is_available():  # the file really needs mapping here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tmp_path / "gpu.pt", weights_only=True)
    model = load_magvit2(tmp_path / "gpu.pt")
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert magvit2_hash(model) == magvit2_hash(load_magvit2(FIX / "fsq_small.pt"))


# -- other checkpoint shapes, sniffing, conversion -------------------------------------------------

def test_trainer_checkpoint_uses_ema_by_default(tmp_path):
    pkg = safe_pickle.torch_load(FIX / "lfq_sphere.pt")
    sd = pkg["model_state_dict"]
    ema = {"initted": torch.tensor(True), "step": torch.tensor(10),
           **{f"ema_model.{k}": v.clone() for k, v in sd.items()}}
    ema["ema_model.conv_out.conv.bias"] = ema["ema_model.conv_out.conv.bias"] + 1
    torch.save({"model": sd, "ema_model": ema, "optimizer": {"state": {}, "param_groups": []}, "step": 10},
               tmp_path / "trainer.pt")
    cfg = normalize_config(safe_pickle.plain(safe_pickle.loads(pkg["config"])))
    m_ema = load_magvit2(tmp_path / "trainer.pt", cfg)
    m_online = load_magvit2(tmp_path / "trainer.pt", cfg, weights="model")
    assert m_ema.card["weights"] == "ema_model" and m_online.card["weights"] == "model"
    assert torch.allclose(m_ema.conv_out.conv.bias, m_online.conv_out.conv.bias + 1)


def test_is_magvit2_checkpoint(tmp_path):
    assert is_magvit2_checkpoint(FIX / "fsq_small.pt")
    assert is_magvit2_checkpoint(FIX / "seed_handwritten.pt")
    assert not is_magvit2_checkpoint(FIX / "fsq_small_io.safetensors")
    assert not is_magvit2_checkpoint(tmp_path)
    torch.save({"videos": torch.zeros(1, 2, 3, 4, 4), "labels": torch.zeros(1)}, tmp_path / "data.pt")
    assert not is_magvit2_checkpoint(tmp_path / "data.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    assert not is_magvit2_checkpoint(tmp_path / "junk.pt")


def test_convert_round_trip(tmp_path):
    out = tmp_path / "mine.safetensors"
    digest = convert(FIX / "seed_handwritten.pt", out, "seed-2026-01")
    assert is_magvit2_checkpoint(out)
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["format"] == FORMAT and json.loads(meta["config"])["fsq_levels"] == [8, 5, 5, 5]
    loaded = load_magvit2(out)  # dispatches on the file's content
    assert magvit2_hash(loaded) == digest == magvit2_hash(load_magvit2(FIX / "seed_handwritten.pt", "seed-2026-01"))
    assert load_converted(out).card["converted_from"].endswith("seed_handwritten.pt")
    io, _ = _io("seed_handwritten")
    video = (io["main.video_u8"].float() / 255).permute(0, 2, 1, 3, 4)
    assert torch.equal(loaded.tokenize(video), io["main.indices"].long())


def test_bad_files_are_one_line(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    for path, pattern in ((tmp_path / "junk.pt", "not a readable torch checkpoint"),
                          (tmp_path / "missing.pt", "no such file"), (tmp_path, "directory")):
        with pytest.raises(MagtaskError, match=pattern) as e:
            load_magvit2(path, "seed-2026-01")
        assert "\n" not in str(e.value)
    torch.save({"epoch": 1, "loss": 0.1}, tmp_path / "noweights.pt")
    with pytest.raises(MagtaskError, match="no model weights found"):
        load_magvit2(tmp_path / "noweights.pt", "seed-2026-01")


def test_convert_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from magtask.commands.convert import convert as convert_command

    app = typer.Typer()
    app.command("convert")(convert_command)
    app.command("noop")(lambda: None)  # two commands, so "convert" is addressed by name as when mounted
    out = tmp_path / "mine.safetensors"
    res = CliRunner().invoke(app, ["convert", str(FIX / "seed_handwritten.pt"), "--out", str(out),
                                   "--tokenizer-config", "seed-2026-01", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["hash"] == magvit2_hash(load_converted(out)) and info["config_source"] == "preset seed-2026-01"
    res = CliRunner().invoke(app, ["convert", str(FIX / "seed_handwritten.pt"), "--out", str(tmp_path / "x.safetensors")])
    assert res.exit_code != 0 and "carries no config" in str(res.exception)
