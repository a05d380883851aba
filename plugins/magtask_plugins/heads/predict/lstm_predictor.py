"""Head `lstm-predictor` (alias `lstm`): code-only; a ConvLSTM over latent steps predicts the future
steps' per-channel code levels (blocks.code_predict).

    past codes (B, C, tp, h, w) -> one-hot levels, the past steps stacked -> conv encoder per step at
      h x w, h/2 x w/2, h/4 x w/4 -> ConvLSTM over steps at h/4 x w/4 (causal by construction) ->
      U-Net decoder at the last past step (skips from its h x w and h/2 x w/2 features) -> level
      logits of the next steps -> expected level (decode) -> config.grid.codes_from_digits -> future
      codes (B, C, tf, h, w)
"""

from __future__ import annotations

from magtask import HeadSpec, Option, hookimpl
from magtask_plugins.blocks.code_predict import CODE_OPTIONS, ConvLSTM, build_predictor


def build(cfg):
    return build_predictor(cfg, "lstm-predictor", ("layers", "kernel"),
                           lambda dim, steps, h, w, layers, kernel: ConvLSTM(dim, layers, kernel))


@hookimpl
def register_heads(register):
    register(HeadSpec(name="lstm-predictor", task="predict", aliases=("lstm",), build=build, consumes="latents",
                      side_inputs=(),
                      options=(*CODE_OPTIONS,
                               Option("layers", int, 1, "ConvLSTM layers", lo=1, hi=16),
                               Option("kernel", int, 3, "ConvLSTM kernel (odd)", lo=1, hi=15)),
                      description="Code-only: U-Net over each latent step's code levels, a ConvLSTM over steps at its "
                                  "bottleneck -> the next steps' per-channel code levels (cross entropy), on the "
                                  "tokenizer's grid"))
