"""Draw the demo's synthetic chest radiographs: a frontal chest whose findings are given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 256
SIGN_LEVELS = 34.0
"""Gray levels of a hidden group's local sign at full strength (each drawn at 60-100 % of it).
Earlier versions drew the hidden groups as one global haze of the lung fields: a shift of a few
gray levels, the size of the exposure jitter and exactly what a brightness/contrast
augmentation teaches an encoder to ignore. A local sign is a small structure: it survives
shifts and global exposure or contrast changes, and stays faint (a thin line or a few spots,
~1 pixel at the encoders' 64-pixel input) so the image carries it weakly."""
HIDDEN_SIGNS = ("atelectasis", "congestion", "airspace", "obstructive", "vascular", "other")
"""The report-only term groups of ``raypi.data.demo.HIDDEN_TERMS``, each with its own sign."""
_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE  # coordinates in [0, 1)


@dataclass(frozen=True)
class Scene:
    """What one radiograph shows (everything the image depends on)."""

    age: float
    """Patient age in years: ribs thin and fade, the spine bends, the aortic knob calcifies."""
    heart_ratio: float
    """Cardiothoracic ratio of the heart shadow (~0.44 normal, larger with cardiomegaly)."""
    effusion: bool
    """Fluid level blunting one or both lung bases."""
    opacity: bool
    """One to three large airspace opacities in the lungs."""
    nodule: bool
    """One or two small dense nodules."""
    hidden: tuple[str, ...] = ()
    """Report-only term groups present (``HIDDEN_SIGNS``): each drawn as its faint local sign."""


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return ((_XX - cx) / rx) ** 2 + ((_YY - cy) / ry) ** 2 <= 1.0


def _soft(mask: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Blur a mask a little by averaging it with shifted copies (cheap, no SciPy)."""
    out = mask.astype(np.float32)
    for _ in range(2):
        out = (out + np.roll(out, 1, 0) + np.roll(out, -1, 0) + np.roll(out, 1, 1)) / 4
    return out * amount * float(rng.uniform(0.9, 1.1))


def _lung_boxes(cx: float, cy: float, width: float) -> tuple[tuple[float, ...], ...]:
    """(centre x, centre y, radius x, radius y) of the left and right lung fields."""
    return (cx - 0.2 * width, cy, 0.16 * width, 0.3), (cx + 0.2 * width, cy, 0.16 * width, 0.3)


def _point_in(box: tuple[float, ...], rng: np.random.Generator) -> tuple[float, float]:
    """A random point well inside an ellipse (uniform over its inner 85%)."""
    radius, angle = 0.85 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
    return box[0] + box[2] * radius * np.cos(angle), box[1] + box[3] * radius * np.sin(angle)


def _ribs(cy: float, aging: float, lungs: np.ndarray, phase: float) -> np.ndarray:
    # Rib bands that sag towards the sides; with age they thin and lose density.
    curve = (_YY - cy) * 26.0 + ((_XX - 0.5) ** 2) * 30.0 + phase
    return (np.sin(curve) > 0.1 + 0.75 * aging) * lungs * (70.0 - 35.0 * aging)


def _spine(cx: float, aging: float, bend: float) -> np.ndarray:
    # The spine curves sideways (degenerative scoliosis) and loses density with age.
    centre = cx + bend * aging * np.sin(np.pi * _YY)
    return (np.abs(_XX - centre) < 0.035) * (_YY > 0.05) * (85.0 - 40.0 * aging)


def _aortic_knob(cx: float, cy: float, aging: float) -> np.ndarray:
    # A calcified rim of the aortic knob appears from middle age on.
    ring = _ellipse(cx - 0.07, cy - 0.1, 0.05, 0.05) & ~_ellipse(cx - 0.07, cy - 0.1, 0.035, 0.035)
    return ring * (140.0 * max(0.0, aging - 0.35))


def _window(x: float, y: float, half: float) -> tuple[slice, slice]:
    """Pixel window of the square centred on (x, y) with half-side ``half`` (unit coordinates)."""
    rows = slice(max(0, int((y - half) * SIZE)), max(0, min(SIZE, int((y + half) * SIZE) + 1)))
    cols = slice(max(0, int((x - half) * SIZE)), max(0, min(SIZE, int((x + half) * SIZE) + 1)))
    return rows, cols


def _findings(scene: Scene, rng, cx, cy, width, boxes, lungs) -> np.ndarray:
    image = np.zeros((SIZE, SIZE), np.float32)
    if scene.effusion:
        sides = (0, 1)[: int(rng.integers(1, 3))] if rng.random() < 0.5 else (1,)
        level = cy + float(rng.uniform(0.05, 0.15)) - 0.08 * np.abs(_XX - cx) / width
        for side in sides:
            image += _soft(_ellipse(*boxes[side]) & (_YY > level), rng, 95.0)
    if scene.opacity:
        for _ in range(int(rng.integers(1, 4))):
            ox, oy = _point_in(boxes[int(rng.integers(2))], rng)
            sigma = float(rng.uniform(0.045, 0.075))
            window = _window(ox, oy, 3 * sigma)
            blob = np.exp(-(((_XX[window] - ox) ** 2 + (_YY[window] - oy) ** 2) / (2 * sigma**2)))
            image[window] += blob * lungs[window] * float(rng.uniform(55, 80))
    if scene.nodule:
        for _ in range(int(rng.integers(1, 3))):
            ox, oy = _point_in(boxes[int(rng.integers(2))], rng)
            radius = float(rng.uniform(0.015, 0.028))
            image += _ellipse(ox, oy, radius, radius) * 110.0
    return image


def _line(x0, y0, x1, y1, width: float) -> np.ndarray:
    """A straight band of half-width ``width`` (unit coordinates) from (x0, y0) to (x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((_XX - x0) * dx + (_YY - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(_XX - (x0 + t * dx), _YY - (y0 + t * dy)) <= width


def _sign(group: str, rng, cx, cy, width, boxes, lungs) -> np.ndarray:
    """One hidden group's faint local sign (the radiological sign its terms go with)."""
    side = boxes[int(rng.integers(2))]
    left, base = side[0] - side[2], side[1] + 0.6 * side[3]
    if group == "atelectasis":  # a plate-like horizontal band above one lung base
        y = base - float(rng.uniform(0.0, 0.06))
        mark = _line(side[0] - 0.6 * side[2], y, side[0] + 0.6 * side[2], y + 0.01, 0.006)
    elif group == "congestion":  # Kerley B lines: short horizontal strokes at the periphery
        edge = left + 0.02 if side[0] < cx else side[0] + side[2] - 0.07
        mark = np.zeros_like(lungs)
        for k in range(4):
            y = base - 0.03 * k
            mark |= _line(edge, y, edge + 0.05, y, 0.004)
    elif group == "airspace":  # a cluster of small patchy spots
        ox, oy = _point_in(side, rng)
        mark = np.zeros_like(lungs)
        for _ in range(5):
            px, py = ox + rng.normal(0, 0.025), oy + rng.normal(0, 0.025)
            mark |= _ellipse(px, py, 0.008, 0.008)
    elif group == "obstructive":  # an apical bulla: a thin-walled ring near the lung apex
        ox, oy = side[0] + rng.normal(0, 0.02), side[1] - 0.6 * side[3]
        mark = _ellipse(ox, oy, 0.04, 0.035) & ~_ellipse(ox, oy, 0.032, 0.027)
    elif group == "vascular":  # calcification along the descending aorta, left of the spine
        x = cx - 0.06
        mark = _line(x, cy - 0.05, x - 0.005, cy + 0.12, 0.005)
    else:  # devices and the rest: a thin tube from the neck into the chest
        x = cx + float(rng.uniform(0.04, 0.08))
        mark = _line(x, 0.02, x - 0.02, cy + 0.05, 0.005)
    return mark * SIGN_LEVELS * float(rng.uniform(0.6, 1.0))


def draw(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Draw one radiograph.

    Args:
        scene: What the image shows.
        rng: Generator for the nuisance (pose, exposure, noise, finding placement).

    Returns:
        A uint8 grayscale image [256, 256].
    """
    cx, cy = 0.5 + rng.normal(0, 0.015), 0.47 + rng.normal(0, 0.015)
    width = float(rng.uniform(0.92, 1.05))
    aging = float(np.clip((scene.age - 20.0) / 70.0 + rng.normal(0, 0.06), 0.0, 1.0))
    image = np.full((SIZE, SIZE), 18.0, np.float32)
    image += _ellipse(cx, cy + 0.06, 0.46 * width, 0.5) * 85.0  # soft tissue of the trunk
    boxes = _lung_boxes(cx, cy, width)
    lungs = _ellipse(*boxes[0]) | _ellipse(*boxes[1])
    image -= lungs * 60.0
    image += _ribs(cy, aging, lungs, float(rng.uniform(0, 2 * np.pi)))
    image += _spine(cx, aging, float(rng.choice([-0.06, 0.06])))
    image += _aortic_knob(cx, cy, aging)
    ctr = scene.heart_ratio
    heart_rx = ctr * 0.72 * width / 2  # thorax (lungs) spans ~0.72 of the width
    heart = _ellipse(cx + 0.03, cy + 0.17, heart_rx, 0.13 + 0.1 * (ctr - 0.42))
    image += _soft(heart & (_YY < cy + 0.3), rng, 75.0)
    image += _findings(scene, rng, cx, cy, width, boxes, lungs)
    signs = np.random.default_rng(int(rng.integers(2**63)))  # the rest of X is drawn alike
    for group in scene.hidden:
        image += _sign(group, signs, cx, cy, width, boxes, lungs)
    image = image * rng.uniform(0.85, 1.15) + rng.normal(0, 6.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)
