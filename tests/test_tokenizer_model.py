import pytest
import torch

from magtask.errors import MagtaskError
from magtask.tokenizer.model import VideoTokenizer

TINY = {"width": 8, "enc_blocks": 1, "mid_blocks": 1, "dec_blocks": 1, "frames": 8, "size": 32}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VideoTokenizer(TINY).eval()


@torch.no_grad()
def test_shapes_and_ratio(model):
    x = torch.rand(2, 8, 3, 32, 32)
    z = model.encode(x)
    assert z.shape == (2, 4, 4, 8, 8) == (2, *model.latent_shape(8, 32))
    codes, idx = model.quantize(z)
    assert codes.shape == z.shape and idx.shape == (2, 4, 8, 8) and idx.dtype == torch.int64
    assert 0 <= int(idx.min()) and int(idx.max()) < model.codebook_size == 1000
    y = model.decode(codes)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert model.compression_ratio(16, 64) == 24.0 > 1
    assert model.causal and model.temporal_stride == 2 and model.spatial_stride == 4


@torch.no_grad()
def test_indices_codes_round_trip(model):
    x = torch.rand(2, 8, 3, 32, 32)
    codes, idx = model.quantize(model.encode(x))
    assert torch.equal(model.indices_to_codes(idx), codes)
    assert torch.equal(model.decode(idx), model.decode(codes))
    every = torch.arange(model.codebook_size).view(1, 1, 10, 100)
    codes2 = model.indices_to_codes(every)
    # re-deriving indices from on-grid codes gives the same indices
    lv = torch.tensor(model.config["levels"]).view(1, -1, 1, 1, 1)
    digits = (codes2 * (lv // 2) + lv // 2).round().long()
    basis = torch.tensor([1, 8, 40, 200]).view(1, -1, 1, 1, 1)
    assert torch.equal((digits * basis).sum(1), every)


@pytest.mark.parametrize("stride", [1, 2])
def test_causal_in_time(stride):
    torch.manual_seed(1)
    m = VideoTokenizer({**TINY, "temporal_stride": stride}).eval()
    x = torch.rand(1, 8, 3, 32, 32)
    k = 4  # frames 0..3 kept, 4..7 perturbed
    y = x.clone()
    y[:, k:] = torch.rand_like(y[:, k:])
    with torch.no_grad():
        zx, zy = m.encode(x), m.encode(y)
        t = k // stride
        assert torch.equal(zx[:, :, :t], zy[:, :, :t])
        assert not torch.allclose(zx[:, :, t:], zy[:, :, t:])
        # the decoder is causal too: the first k frames decode from the first t latent steps alone
        cx = m.quantize(zx)[0]
        assert torch.allclose(m.decode(cx)[:, :k], m.decode(cx[:, :, :t]), atol=1e-6)
        # and a prefix encodes the same alone as inside the whole video
        assert torch.allclose(m.encode(x[:, :k]), zx[:, :, :t], atol=1e-6)


def test_bad_inputs(model):
    with pytest.raises(MagtaskError, match="temporal stride"):
        model.encode(torch.rand(1, 7, 3, 32, 32))
    with pytest.raises(MagtaskError, match="spatial stride"):
        model.encode(torch.rand(1, 8, 3, 30, 32))
    with pytest.raises(MagtaskError, match=r"\(B, T, 3, H, W\)"):
        model.encode(torch.rand(8, 3, 32, 32))
    bad = torch.rand(1, 8, 3, 32, 32)
    bad[0, 3, 1, 2, 2] = float("nan")
    with pytest.raises(MagtaskError, match="NaN"):
        model.encode(bad)
    with pytest.raises(MagtaskError, match="indices"):
        model.decode(torch.full((1, 4, 8, 8), 1000))
    with pytest.raises(MagtaskError, match="temporal stride"):
        model.latent_shape(15, 64)
