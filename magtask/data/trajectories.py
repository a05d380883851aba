"""3D trajectory families and the pinhole camera that frames each one.

Every path is sampled at T evenly spaced times t in [0, 1]. Parameters are drawn at random per
video; the camera looks at the path from a random direction chosen so that the family stays
recognisable in 2D (the *view constraints*):

- linear:    a straight segment at constant speed; the camera never looks along the segment
             (|cos(direction, view)| <= 0.75), so the dot always travels across the frame.
- circular:  1.1 to 1.6 turns of a circle; the camera sees the circle's plane at most 50 degrees
             off face-on (|cos(normal, view)| >= 0.65), so it is an ellipse, never a line.
- helical:   1.25 to 2 turns around an axis while drifting along it by 2 to 3.5 radii; the camera
             is never near the axis (|cos(axis, view)| in [0.2, 0.6]): a helix seen down its axis
             is a circle, and seen exactly side-on its loops collapse into a zigzag.
- parabolic: a projectile path (uniform horizontal speed, constant acceleration) whose height is
             0.4 to 1.5 times its width, apex anywhere in the middle of the clip; the camera sees
             its plane at most 50 degrees off face-on, so the curvature is visible.

The camera is a pinhole at distance 4 to 6 path-extents from the path's centre. Its focal length
and principal point are then chosen per video so the projected path fills `fill` of the frame
(inside a margin that keeps the whole dot visible).
"""

from __future__ import annotations

import numpy as np

# The generator's classes, in label order. Every dataset file carries its own class names; these are
# the names of the generator's files and the defaults for the seed project's formats.
CLASS_NAMES = ("linear", "circular", "helical", "parabolic")
GENERATOR_VERSION = "1"
# params row layout (float32, per video); unused entries are 0.
PARAM_NAMES = ("length_or_radius", "turns", "drift", "height_ratio", "apex", "phase", "direction_sign")
# camera row layout: forward(3) right(3) up(3) position(3) focal_px principal_x principal_y
CAMERA_NAMES = ("fx", "fy", "fz", "rx", "ry", "rz", "ux", "uy", "uz", "px", "py", "pz", "focal", "cx", "cy")

# the |cos| between the family's key axis and the view direction must lie in this range
_VIEW_LIMITS = {
    "linear": (0.0, 0.75),
    "circular": (0.65, 1.0),
    "helical": (0.2, 0.6),
    "parabolic": (0.65, 1.0),
}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    return _unit(rng.normal(size=3))


def _orthonormal_pair(normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    u = _unit(np.cross(normal, _random_unit(rng)))
    return u, np.cross(normal, u)


def sample_path(label: int, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One 3D path of the class `label`: (points (T, 3), key axis (3,), params (len(PARAM_NAMES),))."""
    t = np.linspace(0.0, 1.0, frames)
    params = np.zeros(len(PARAM_NAMES), dtype=np.float64)
    name = CLASS_NAMES[label]
    if name == "linear":
        d = _random_unit(rng)
        length = rng.uniform(1.0, 2.0)
        pts = np.outer(t - 0.5, d * length)
        params[0] = length
        return pts, d, params
    sign = rng.choice([-1.0, 1.0])
    phase = rng.uniform(0, 2 * np.pi)
    params[5], params[6] = phase, sign
    if name in ("circular", "helical"):
        normal = _random_unit(rng)
        u, w = _orthonormal_pair(normal, rng)
        turns = rng.uniform(1.1, 1.6) if name == "circular" else rng.uniform(1.25, 2.0)
        ang = phase + sign * 2 * np.pi * turns * t
        pts = np.outer(np.cos(ang), u) + np.outer(np.sin(ang), w)
        params[0], params[1] = 1.0, turns
        if name == "helical":
            drift = rng.uniform(2.0, 3.5)
            pts = pts + np.outer(t - 0.5, normal * drift)
            params[2] = drift
        return pts, normal, params
    # parabolic: x = s, y = -k s^2 in the plane (u, up), s spans a unit width around the apex
    normal = _random_unit(rng)
    u, up = _orthonormal_pair(normal, rng)
    apex = rng.uniform(-0.3, 0.3)
    s = (t - 0.5) - apex
    height_ratio = rng.uniform(0.4, 1.5)
    k = height_ratio / max(np.max(s**2) - np.min(s**2), 1e-3)
    pts = np.outer(s, u) + np.outer(-k * s**2, up)
    params[3], params[4] = height_ratio, apex
    return pts, normal, params


def sample_view(label: int, key_axis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random view direction obeying the family's view constraint (rejection sampling)."""
    lo, hi = _VIEW_LIMITS[CLASS_NAMES[label]]
    for _ in range(1000):
        view = _random_unit(rng)
        c = abs(float(view @ key_axis))
        if lo <= c <= hi:
            return view
    raise RuntimeError("could not sample a view direction")  # practically unreachable


def project(points: np.ndarray, view: np.ndarray, size: int, margin: float, fill: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection framed to fill the image: (centres (T, 2) as pixel x, y; camera row)."""
    centre = points.mean(axis=0)
    extent = float(np.max(np.linalg.norm(points - centre, axis=1))) + 1e-6
    position = centre - view * extent * rng.uniform(4.0, 6.0)
    helper = np.array([0.0, 0.0, 1.0]) if abs(view[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    right = _unit(np.cross(view, helper))
    up = np.cross(right, view)
    # roll the camera about its axis so paths are not all aligned with the image axes
    roll = rng.uniform(0, 2 * np.pi)
    right, up = np.cos(roll) * right + np.sin(roll) * up, -np.sin(roll) * right + np.cos(roll) * up
    q = points - position
    z = q @ view
    xy = np.stack([q @ right / z, q @ up / z], axis=1)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = float(np.max(hi - lo)) + 1e-9
    usable = size - 2 * margin
    focal = fill * usable / span
    mid = (lo + hi) / 2
    cx = size / 2 - focal * mid[0]
    cy = size / 2 + focal * mid[1]
    centres = np.stack([cx + focal * xy[:, 0], cy - focal * xy[:, 1]], axis=1)
    camera = np.concatenate([view, right, up, position, [focal, cx, cy]])
    return centres, camera
