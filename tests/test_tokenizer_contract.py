"""The tokenizer contract (magtask/tokenizer/common.py) holds for every kind magtask loads: ours and
magvit2-pytorch checkpoints made by the real package (FSQ, LFQ, spherical LFQ, the seed preset).

The code grid (magtask/tokenizer/grid.py) is checked against each tokenizer's own quantizer: snapping
its codes is the identity, grid indices equal the tokenizer's, grid codes_from_indices equals its
indices_to_codes, and snapping noisy codes lands on the grid, on the nearest point."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from magtask.errors import MagtaskError
from magtask.tokenizer.grid import CodeGrid
from magtask.tokenizer.io import load_tokenizer
from magtask.tokenizer.magvit2_load import load_magvit2

FIX = Path(__file__).parent / "fixtures" / "magvit2"
MAGVIT2 = [("fsq_small", None, "fsq", 16), ("lfq_small", None, "lfq", 16), ("lfq_sphere", None, "lfq", 8),
           ("seed_handwritten", "seed-2026-01", "fsq", 64)]


def _tokenizers(tiny_tokenizer):
    yield "ours", load_tokenizer(tiny_tokenizer), "fsq", 64
    for name, config, kind, size in MAGVIT2:
        yield name, load_magvit2(FIX / f"{name}.pt", config), kind, size


def _video(tok, size: int, seed: int = 0) -> torch.Tensor:
    frames = tok.frames_of(3)
    return torch.rand(2, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_every_tokenizer_kind_meets_the_contract(tiny_tokenizer):
    for name, tok, kind, size in _tokenizers(tiny_tokenizer):
        grid = tok.grid
        assert grid.kind == kind, name
        assert grid.codebook_size == tok.codebook_size and grid.channels == tok.latent_channels, name
        video = _video(tok, size)
        with torch.no_grad():
            codes, idx = tok.quantize(tok.encode(video))
        c, t, h, w = tok.latent_shape(video.shape[1], size)
        assert codes.shape == (2, c, t, h, w) and idx.shape == (2, t, h, w) and t == 3, name
        assert tok.latent_steps(video.shape[1]) == 3 and tok.frames_of(t) == video.shape[1], name
        assert torch.equal(grid.indices(codes), idx), name
        assert torch.allclose(grid.codes_from_indices(idx), tok.indices_to_codes(idx), atol=1e-6), name
        snapped, sidx = grid.snap(codes)
        assert torch.allclose(snapped, codes, atol=1e-6) and torch.equal(sidx, idx), name
        noisy = codes + 0.2 * torch.randn(codes.shape, generator=torch.Generator().manual_seed(1)) / max(grid.levels)
        snapped, sidx = grid.snap(noisy)
        assert torch.allclose(grid.codes_from_indices(sidx), snapped, atol=1e-6), name
        with torch.no_grad():  # decoding snapped values works like decoding the tokenizer's own codes
            assert tok.decode(snapped).shape == video.shape, name
        info = tok.info()
        for key in ("arch", "quantizer", "codebook_size", "temporal_stride", "spatial_stride", "causal", "params"):
            assert key in info, (name, key)
        assert info["causal"] is True


def test_snap_is_the_nearest_grid_point():
    grid = CodeGrid.fsq((8, 5, 3))
    values = torch.tensor([[0.3, -0.9, 0.1], [2.0, 0.26, -0.6], [-3.0, -0.24, 0.49]]).T[None]  # (1, 3, 3)
    codes, idx = grid.snap(values)
    # allowed values: 8 levels (d-4)/4 in -1..0.75, 5 levels (d-2)/2 in -1..1, 3 levels d-1 in -1..1
    assert codes[0, 0].tolist() == [0.25, 0.75, -1.0]
    assert codes[0, 1].tolist() == [-1.0, 0.5, 0.0]
    assert codes[0, 2].tolist() == [0.0, -1.0, 0.0]
    assert torch.equal(grid.codes_from_indices(idx), codes)
    lfq = CodeGrid.lfq(3, spherical=True)
    codes, idx = lfq.snap(torch.tensor([[0.2], [-5.0], [0.0]])[None])
    s = 1 / 3 ** 0.5
    assert torch.allclose(codes[0, :, 0], torch.tensor([s, -s, s])) and idx.item() == 0b101


def test_grid_round_trips_as_json_and_refuses_what_it_cannot_do():
    for grid in (CodeGrid.fsq((8, 5, 5, 5)), CodeGrid.lfq(5), CodeGrid.lfq(4, True), CodeGrid.continuous(6)):
        assert CodeGrid.from_json(grid.to_json()) == grid
    cont = CodeGrid.continuous(2)
    x = torch.randn(1, 2, 3)
    assert torch.equal(cont.snap(x)[0], x) and cont.snap(x)[1] is None and cont.codebook_size is None
    with pytest.raises(MagtaskError, match="continuous latents"):
        cont.digits(x)
    with pytest.raises(MagtaskError, match="3 channels"):
        CodeGrid.lfq(3).snap(torch.zeros(1, 2, 4))
    with pytest.raises(MagtaskError, match="NaN"):
        CodeGrid.lfq(2).snap(torch.tensor([[float("nan")], [0.0]])[None])
    with pytest.raises(MagtaskError, match="quantizer kind"):
        CodeGrid("vq", 4)


@pytest.mark.parametrize("name,config,kind,quantizer", [
    ("lfq_small", None, "magvit2-pytorch", "LFQ 5 bits (32 codes)"),
    ("lfq_sphere", None, "magvit2-pytorch", "LFQ 4 bits spherical (16 codes)"),
    ("seed_handwritten", "seed-2026-01", "magvit2-pytorch", "FSQ levels 8,5,5,5 (1000 codes)"),
])
def test_tokenizer_info_describes_magvit2_checkpoints(name, config, kind, quantizer):
    from conftest import run_cli
    import json

    args = ["tokenizer", "info", "--tokenizer", str(FIX / f"{name}.pt"), "--json"]
    if config:
        args += ["--tokenizer-config", config]
    res = json.loads(run_cli(*args, check=True).stdout)
    tok = load_magvit2(FIX / f"{name}.pt", config)
    assert res["arch"] == kind and res["quantizer"] == quantizer and res["causal"] is True
    assert res["params"] == tok.num_params() and len(res["hash"]) == 64
    assert (res["temporal_stride"], res["spatial_stride"]) == (tok.temporal_stride, tok.spatial_stride)
    assert res["latent_shape"] == list(tok.latent_shape())
    text = run_cli(*[a for a in args if a != "--json"], check=True).stdout
    assert quantizer in text and "magvit2-pytorch" in text


def test_tokenizer_info_on_ours_and_refusals(tiny_tokenizer, tmp_path):
    from conftest import run_cli
    import json

    res = json.loads(run_cli("tokenizer", "info", "--tokenizer", str(tiny_tokenizer), "--json", check=True).stdout)
    assert res["arch"] == "magtask" and res["quantizer"] == "FSQ levels 8,5,5,5 (1000 codes)"
    assert res["latent_shape"] == [4, 8, 16, 16] and res["temporal_stride"] == 2
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = run_cli("tokenizer", "info", "--tokenizer", str(bad))
    assert proc.returncode in (1, 2) and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
