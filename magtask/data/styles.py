"""How a dot is drawn: the seed project's look, a "varied" style drawn at random per video, and a
"bright" look the shipped tokenizer never saw (a light background, a bright saturated disc with a
dark outline: the look of trajectory videos rendered elsewhere), for fine-tuning and held-out scores.

A style row (float32) holds: radius, dot RGB, background RGB, outline flag, outline RGB, noise std.
Colours are in [0, 1]; the noise std is in the same units, added per pixel and channel.
"""

from __future__ import annotations

import numpy as np

STYLE_NAMES = ("radius", "dot_r", "dot_g", "dot_b", "bg_r", "bg_g", "bg_b", "outline",
               "ring_r", "ring_g", "ring_b", "noise")
STYLES = ("seed", "varied", "bright")

# The seed project's look: light grey background, one dark dot of radius 5 px, no outline, no noise.
SEED_RADIUS = 5.0
SEED_DOT = (0.08, 0.08, 0.1)
SEED_BACKGROUND = (0.92, 0.92, 0.92)


def sample_style(style: str, rng: np.random.Generator) -> np.ndarray:
    """One style row for one video."""
    if style == "seed":
        return np.array([SEED_RADIUS, *SEED_DOT, *SEED_BACKGROUND, 0.0, *SEED_DOT, 0.0])
    if style == "bright":
        dot = rng.uniform(0.0, 0.5, size=3)
        dot[rng.integers(3)] = rng.uniform(0.75, 1.0)  # one channel high: a saturated hue
        return np.array([rng.uniform(4.0, 7.0), *dot, *rng.uniform(0.9, 1.0, size=3), 1.0,
                         *rng.uniform(0.0, 0.25, size=3), 0.0])
    if style != "varied":
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    radius = rng.uniform(3.0, 7.0)
    dot = rng.uniform(0.0, 0.45, size=3)  # any hue, always dark
    bg = rng.uniform(0.75, 1.0, size=3)  # any tint, always light
    outline = float(rng.random() < 0.3)
    ring = rng.uniform(0.0, 1.0, size=3) * 0.6 if outline else dot
    noise = rng.uniform(0.0, 0.03) if rng.random() < 0.5 else 0.0
    return np.array([radius, *dot, *bg, outline, *ring, noise])
