"""Draw the demo's synthetic chest radiographs: a frontal chest whose findings are given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 256
HAZE_LEVELS = 60.0
"""Gray levels a full haze (1.0) lightens the lung fields by. It was 22: one hidden group
(+0.1 haze) then lightened the lungs by ~2 levels, below the exposure jitter (±15 %), and
image-only models of the prognostic task sat at chance (AUC 0.53-0.55 with the demo encoders,
against 0.75 for an oracle reading the haze) — no trace left to distill into."""
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
    haze: float
    """Diffuse lung haze (0 = none): the image's faint trace of report-only severity."""


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
    image -= lungs * (60.0 - HAZE_LEVELS * scene.haze)
    image += _ribs(cy, aging, lungs, float(rng.uniform(0, 2 * np.pi)))
    image += _spine(cx, aging, float(rng.choice([-0.06, 0.06])))
    image += _aortic_knob(cx, cy, aging)
    ctr = scene.heart_ratio
    heart_rx = ctr * 0.72 * width / 2  # thorax (lungs) spans ~0.72 of the width
    heart = _ellipse(cx + 0.03, cy + 0.17, heart_rx, 0.13 + 0.1 * (ctr - 0.42))
    image += _soft(heart & (_YY < cy + 0.3), rng, 75.0)
    image += _findings(scene, rng, cx, cy, width, boxes, lungs)
    image = image * rng.uniform(0.85, 1.15) + rng.normal(0, 6.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)
