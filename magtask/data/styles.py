"""How a dot is drawn: the seed project's look, a "varied" style drawn at random per video, a broad
"looks" style for training tokenizers, and three held-out looks that "looks" never draws.

A style row (float32) holds STYLE_NAMES: radius, dot RGB, background RGB, outline flag, outline RGB,
noise std. Colours are in [0, 1]; the noise std is in the same units, added per pixel and channel.
The looks-era styles write LOOK_NAMES rows, which add a second background colour (the background is
a linear gradient from bg to bg2 across the frame at gradient_angle radians; bg2 = bg is flat) and
the width in px of the dot's edge ramp (1: the hard anti-aliased edge of the older styles). The older
styles keep 12-column rows, so their files (and every cache keyed by their hashes) do not change.

"looks" draws one of LOOK_FAMILIES per video (with LOOK_WEIGHTS: light backgrounds, the common case
in trajectory videos, most often):
  light     flat light background (0.7-1 per channel), dark solid dot (no outline)
  dark      flat dark background, light dot, outlined half the time
  colour    flat background of any colour, a dot of any colour that differs from it in brightness
  gradient  a two-colour linear gradient, a contrasting solid dot
  soft      a soft-edged dot (2-4 px ramp) on a dark or mid background
each with noise (std <= 0.03) on 30 % of the videos and a radius of 2.5-8 px.
HELD_OUT (name -> what it is) combines those ingredients in ways "looks" never does.
`held_out_family(row)` says which held-out look a row belongs to (None for every "looks" row).
"""

from __future__ import annotations

import numpy as np

STYLE_NAMES = ("radius", "dot_r", "dot_g", "dot_b", "bg_r", "bg_g", "bg_b", "outline",
               "ring_r", "ring_g", "ring_b", "noise")
LOOK_NAMES = STYLE_NAMES + ("bg2_r", "bg2_g", "bg2_b", "gradient_angle", "edge")
LOOK_FAMILIES = ("light", "dark", "colour", "gradient", "soft")
LOOK_WEIGHTS = (0.3, 0.15, 0.2, 0.2, 0.15)
HELD_OUT = {
    "bright": "a saturated disc with a dark outline on a near-white flat background (outlines appear "
              "only on dark backgrounds in the 'looks' training style)",
    "mist": "a soft-edged (2-3.5 px ramp) dark dot on a light flat background, with per-pixel noise "
            "(soft edges appear only on dark or mid backgrounds in 'looks')",
    "blob": "a large dark dot (radius 8.5-11 px; 'looks' draws 2.5-8) on a light flat background",
}
STYLES = ("seed", "varied", "looks", *HELD_OUT)

# The seed project's look: light grey background, one dark dot of radius 5 px, no outline, no noise.
SEED_RADIUS = 5.0
SEED_DOT = (0.08, 0.08, 0.1)
SEED_BACKGROUND = (0.92, 0.92, 0.92)


def style_names(style: str) -> tuple[str, ...]:
    """The columns of a style's rows."""
    return LOOK_NAMES if style in ("looks", "mist", "blob") else STYLE_NAMES


def _look(radius, dot, bg, bg2=None, angle=0.0, outline=None, edge=1.0, noise=0.0) -> np.ndarray:
    ring = dot if outline is None else outline
    bg2 = bg if bg2 is None else bg2
    return np.array([radius, *dot, *bg, float(outline is not None), *ring, noise, *bg2, angle, edge])


def _contrasting(rng: np.random.Generator, against: np.ndarray, gap: float = 0.3) -> np.ndarray:
    """A colour whose mean brightness differs from `against`'s by at least `gap`."""
    while True:
        c = rng.uniform(0.0, 1.0, size=3)
        if abs(c.mean() - against.mean()) >= gap:
            return c


def sample_look(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """One "looks" row (LOOK_NAMES) and the family it was drawn from."""
    family = LOOK_FAMILIES[rng.choice(len(LOOK_FAMILIES), p=LOOK_WEIGHTS)]
    radius = rng.uniform(2.5, 8.0)
    noise = rng.uniform(0.0, 0.03) if rng.random() < 0.3 else 0.0
    if family == "light":
        row = _look(radius, rng.uniform(0.0, 0.45, 3), rng.uniform(0.7, 1.0, 3), noise=noise)
    elif family == "dark":
        outline = rng.uniform(0.0, 1.0, 3) if rng.random() < 0.5 else None
        row = _look(radius, rng.uniform(0.55, 1.0, 3), rng.uniform(0.0, 0.3, 3), outline=outline, noise=noise)
    elif family == "colour":
        bg = rng.uniform(0.0, 1.0, 3)
        row = _look(radius, _contrasting(rng, bg), bg, noise=noise)
    elif family == "gradient":
        bg, bg2 = rng.uniform(0.0, 1.0, 3), rng.uniform(0.0, 1.0, 3)
        row = _look(radius, _contrasting(rng, (bg + bg2) / 2), bg, bg2, rng.uniform(0, 2 * np.pi), noise=noise)
    else:  # soft
        bg = rng.uniform(0.0, 0.6, 3)
        row = _look(radius, _contrasting(rng, bg), bg, edge=rng.uniform(2.0, 4.0), noise=noise)
    return family, row


def held_out_family(row: np.ndarray) -> str | None:
    """Which HELD_OUT look a style row belongs to: an outlined dot on a near-white flat background is
    "bright"; a soft-edged dot on a light flat background is "mist"; a dot of radius > 8.25 px on a
    light flat background is "blob"; anything else None."""
    bg = row[4:7]
    flat = len(row) <= 12 or np.allclose(row[12:15], bg)
    if not flat or bg.min() < 0.6:
        return None
    if row[7] > 0 and bg.min() >= 0.85:
        return "bright"
    if len(row) > 16 and row[16] > 1.5:
        return "mist"
    if row[0] > 8.25:
        return "blob"
    return None


def sample_style(style: str, rng: np.random.Generator) -> np.ndarray:
    """One style row (style_names(style)) for one video."""
    if style == "looks":
        return sample_look(rng)[1]
    if style == "mist":
        return _look(rng.uniform(3.0, 7.0), rng.uniform(0.0, 0.5, 3), rng.uniform(0.8, 1.0, 3),
                     edge=rng.uniform(2.0, 3.5), noise=rng.uniform(0.01, 0.025))
    if style == "blob":
        return _look(rng.uniform(8.5, 11.0), rng.uniform(0.0, 0.45, 3), rng.uniform(0.7, 1.0, 3),
                     noise=rng.uniform(0.0, 0.02) if rng.random() < 0.3 else 0.0)
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
