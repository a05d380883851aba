"""Head `transformer-predictor` (alias `transformer`): code-only; a transformer over the cell tokens of
every latent step, causal across steps and full within a step, predicts the future steps'
per-channel code levels (blocks.code_predict).

    past codes (B, C, tp, h, w) -> one-hot levels, the past steps stacked -> conv encoder per step at
      h x w, h/2 x w/2, h/4 x w/4 -> its (h/4 * w/4) tokens + learned cell and step embeddings ->
      pre-norm transformer, block-causal mask -> U-Net decoder at the last past step (skips from its
      h x w and h/2 x w/2 features) -> level logits of the next steps -> expected level (decode) ->
      config.grid.codes_from_digits
    Trained on every step's prediction from step 1 on (context 1), not only the last past step's.
"""

from __future__ import annotations

from magtask import HeadSpec, Option, hookimpl
from magtask_plugins.blocks.code_predict import BlockCausalTransformer, build_predictor, code_options


def build(cfg):
    return build_predictor(cfg, "transformer-predictor", ("depth", "heads"),
                           lambda dim, steps, h, w, depth, heads: BlockCausalTransformer(dim, steps, h, w, depth, heads))


@hookimpl
def register_heads(register):
    register(HeadSpec(name="transformer-predictor", task="predict", aliases=("transformer",), build=build,
                      consumes="latents", side_inputs=(),
                      # context 1: chosen on val (benchmarks/predict.md)
                      options=(*code_options(context=1),
                               Option("depth", int, 4, "transformer layers", lo=1, hi=64),
                               Option("heads", int, 4, "attention heads (must divide 4 x width, the core's width)", lo=1, hi=64)),
                      description="Code-only: U-Net over each latent step's code levels, a transformer over its "
                                  "bottleneck tokens, causal across latent steps -> the next steps' per-channel code levels (cross "
                                  "entropy), on the tokenizer's grid"))
