"""The code-only generate heads (gaussian-prior, class-conditional-prior, token-prior): they declare no
side input and learn from codes and labels alone; their blocks (code mixture, patch MaskGIT); they run
on an LFQ tokenizer's grid; and they refuse a grid too big for them in one line."""

import json
from pathlib import Path

import pytest
import torch

from magtask import MagtaskError, TrainData
from magtask.contracts import BuildConfig, SideInputs
from magtask.loop import TrainConfig, train_head
from magtask.registry import get_registry
from magtask.tokenizer.grid import CodeGrid

from conftest import assert_head_reloads, run_cli

CODE_ONLY = {"gaussian-prior": {"components": 2}, "class-conditional-prior": {"components": 1},
             "token-prior": {"dim": 16, "depth": 1, "steps": 2}}
FIX = Path(__file__).parent / "fixtures" / "magvit2"


def tiny_inputs(spec, grid, n=16, t=2, h=4, w=4):
    """Random grid codes (latents) or indices for a head, two classes."""
    idx = torch.randint(0, grid.codebook_size, (n, t, h, w), generator=torch.Generator().manual_seed(0))
    x = idx if spec.consumes == "indices" else grid.codes_from_indices(idx)
    return x, torch.arange(n) % 2


@pytest.mark.parametrize("name", sorted(CODE_ONLY))
def test_a_code_only_head_declares_no_side_input_and_is_never_handed_tracks(name):
    """Fails if a code-only head declares a side input, or if training it asks for the tracks."""
    spec = get_registry().head("generate", name)
    assert spec.side_inputs == ()
    grid = CodeGrid.fsq((4, 3))
    x, y = tiny_inputs(spec, grid)
    config = BuildConfig(task="generate", in_shape=tuple(x.shape[1:]), class_names=("a", "b"),
                         codebook_size=grid.codebook_size, levels=grid.levels, frames=4, image_size=16,
                         options={**{o.name: o.default for o in spec.options}, **CODE_ONLY[name]}, grid=grid)
    head = spec.build(config)
    asked = []

    def tracks():
        asked.append(1)
        raise AssertionError("a code-only head was handed the tracker's tracks")

    side = SideInputs(name, spec.side_inputs, {"tracker_tracks": tracks})
    train_head(head, TrainData(x=x, y=y, side=side), lambda: (x, y), None, TrainConfig(epochs=1, quiet=True))
    out = head.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert out.shape[0] == 2 and not asked
    with pytest.raises(MagtaskError, match="without declaring"):  # and had it asked, it would have been refused
        side["tracker_tracks"]


def test_the_track_head_is_refused_tracks_it_does_not_declare():
    from magtask_plugins.heads.generate.track_prior import TrackPrior

    head = TrackPrior(in_shape=(2, 4, 8, 8), components=1)
    data = TrainData(x=torch.zeros(4, 2, 4, 8, 8), y=torch.zeros(4, dtype=torch.long),
                     side=SideInputs("track-prior", (), {"tracker_tracks": lambda: torch.zeros(4, 8, 2)}))
    with pytest.raises(MagtaskError, match="without declaring"):
        head.fit(data)


def test_code_mixture_clusters_have_enough_members_and_samples_stay_near_their_cluster():
    from magtask_plugins.blocks.code_mixture import CodeMixture

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0]])
    x = (centres[torch.arange(40) % 2] + 0.05 * torch.randn(40, 3, generator=g)).view(40, 3, 1, 1, 1)
    m = CodeMixture((3, 1, 1, 1), groups=1, components=10, rank=1, min_members=6)
    m.fit(x, torch.zeros(40, dtype=torch.long))
    w = m.weights[0]
    assert (w[w > 0] >= 6).all() and w.sum() == 40 and (w > 0).sum() <= 6
    s = m.sample(torch.zeros(200, dtype=torch.long), torch.Generator().manual_seed(1)).view(200, 3)
    nearest = torch.cdist(s, centres).min(1).values
    assert nearest.max() < 0.5  # every draw is near one of the two modes, none between them
    assert (s[:, 0] > 0).float().mean().item() == pytest.approx(0.5, abs=0.15)


def test_code_mixture_smoothing_clusters_grids_by_where_their_content_is():
    """One bright cell per grid, in columns 0-2 or 5-7: raw codes are equally far apart whenever the cells
    differ, so k-means cannot tell near from far; clustered on spatially smoothed codes, the two
    clusters are the left and the right columns."""
    from magtask_plugins.blocks.code_mixture import cluster

    cols = torch.tensor([0, 1, 2, 5, 6, 7]).repeat(4)
    x = torch.zeros(len(cols), 1, 1, 8, 8)
    x[torch.arange(len(cols)), 0, 0, 3, cols] = 1.0
    left = cols < 4
    a = cluster(x, 2, min_members=2, smooth=1.5, seed=0)
    assert len(a.unique()) == 2 and (a[left] == a[left][0]).all() and (a[~left] == a[~left][0]).all()
    splits = [cluster(x, 2, min_members=2, smooth=0.0, seed=s) for s in range(6)]
    assert not all((a[left] == a[left][0]).all() and (a[~left] == a[~left][0]).all() for a in splits)


def test_code_mixture_refuses_a_grid_too_big_in_one_line():
    from magtask_plugins.heads.generate.class_conditional_prior import ClassConditionalPrior

    with pytest.raises(MagtaskError, match="-o components"):
        ClassConditionalPrior((4, 16, 64, 64), n_classes=4, components=32, rank=4)


def test_patch_maskgit_patches_round_trip_and_samples_only_allowed_tokens():
    from magtask_plugins.blocks.patch_maskgit import PatchMaskGIT

    m = PatchMaskGIT((4, 8, 8), vocab_size=10, n_classes=2, patch=(2, 4), dim=16, depth=1, heads=2, emb=8)
    v = torch.randint(0, 10, (3, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    p = m.to_patches(v)
    assert p.shape == (3, 2, 2, 2, 32) and torch.equal(p[1, 1, 0, 1].view(2, 4, 4), v[1, 2:4, 0:4, 4:8])
    assert torch.equal(m.from_patches(p), v)
    assert m.logits(v, torch.tensor([0, 1, 2])).shape == (3, 4, 8, 8, 10)
    m.allowed[:] = False
    m.allowed[torch.tensor([2, 5])] = True
    s = m.sample(torch.tensor([0, 1]), steps=4, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2, 4, 8, 8) and set(s.unique().tolist()) <= {2, 5}


def test_patch_maskgit_learns_where_each_class_puts_its_token():
    """Class 0 grids hold token 1 in the left half, class 1 in the right half (token 0 elsewhere)."""
    from magtask_plugins.blocks.patch_maskgit import PatchMaskGIT

    torch.manual_seed(0)
    n = 64
    y = torch.arange(n) % 2
    v = torch.zeros(n, 2, 4, 4, dtype=torch.long)
    v[y == 0, :, :, :2] = 1
    v[y == 1, :, :, 2:] = 1
    m = PatchMaskGIT((2, 4, 4), vocab_size=2, n_classes=2, patch=(1, 2), dim=32, depth=1, heads=2, emb=8)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(150):
        loss = m.loss(v, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    s = m.sample(torch.tensor([0] * 8 + [1] * 8), steps=4, temperature=0.5, generator=torch.Generator().manual_seed(0))
    assert (s == v[torch.tensor([0] * 8 + [1] * 8)]).float().mean() > 0.9


def test_token_prior_scores_its_vocabulary_not_the_whole_codebook():
    """On a 65 536-code grid with vocab 8 the transformer's output layer has 8 entries (scoring every code
    made a training step ~60x slower on tokenizer v3); samples are codebook ids among the 8, and a
    held-out id no training grid uses is read as the nearest vocabulary id."""
    from magtask_plugins.heads.generate.token_prior import TokenPrior

    grid = CodeGrid.fsq((16, 16, 16, 16))
    head = TokenPrior((2, 4, 4), grid, n_classes=2, vocab=8, patch=2, patch_t=1, dim=16, depth=1, steps=3)
    assert head.net.head.out_features == 8
    g = torch.Generator().manual_seed(0)
    pool = torch.randint(0, grid.codebook_size, (40,), generator=g)
    x = pool[torch.randint(0, 40, (16, 2, 4, 4), generator=g)]
    head.prepare(TrainData(x=x, y=torch.arange(16) % 2, side=SideInputs("token-prior", (), {}), seed=0))
    vocab = set(head.vocab_ids.tolist())
    assert len(vocab) == 8 and vocab <= set(pool.tolist())
    assert head.loss(x, torch.arange(16) % 2).isfinite()
    s = head.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(1))
    assert s.shape == (2, 2, 4, 4) and set(s.unique().tolist()) <= vocab
    unseen = int(next(i for i in range(grid.codebook_size) if i not in set(pool.tolist())))
    codes = grid.codes_from_indices(torch.tensor([unseen] + sorted(vocab)), dim=-1)
    nearest = sorted(vocab)[int(torch.cdist(codes[:1], codes[1:]).argmin())]
    assert int(head.vocab_ids[head.to_vocab(torch.tensor([unseen]))]) == nearest


def test_token_prior_refuses_a_grid_too_long_for_it_in_one_line():
    from magtask_plugins.heads.generate.token_prior import TokenPrior

    with pytest.raises(MagtaskError, match="-o patch="):
        TokenPrior((16, 64, 64), CodeGrid.fsq((8, 5, 5, 5)))  # the seed preset's latents, 2 x 4 x 4 patches
    TokenPrior((16, 64, 64), CodeGrid.fsq((8, 5, 5, 5)), patch=8, patch_t=4, dim=16, depth=1)  # what it names


@pytest.fixture(scope="module")
def lfq_data(tmp_path_factory):
    """Videos the LFQ fixture tokenizer takes: 16 x 16 frames, 5 of them (1 + 2 k)."""
    from magtask.data.generate import generate_dataset

    path = tmp_path_factory.mktemp("lfq") / "small.safetensors"
    generate_dataset(path, per_class=8, seed=5, frames=5, size=16)
    return path


@pytest.mark.parametrize("head,options", [("gaussian", ["-o", "components=2"]),
                                          ("class-conditional", ["-o", "components=1"]),
                                          ("maskgit", ["-o", "dim=16", "-o", "depth=1", "-o", "steps=2"])])
def test_code_only_heads_run_on_an_lfq_grid(lfq_data, tmp_path, head, options):
    run_dir = tmp_path / "run"
    tok = FIX / "lfq_small.pt"
    proc = run_cli("run", "generate", head, "--data", str(lfq_data), "--tokenizer", str(tok), "--epochs", "1",
                   "--samples", "2", "--run-dir", str(run_dir), "--json", *options, check=True)
    m = json.loads(proc.stdout)
    assert m["side_inputs"] == [] and m["n_samples"] == 8
    assert_head_reloads(run_dir, lfq_data, tok)
