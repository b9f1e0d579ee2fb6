"""Draw the demo's synthetic chest radiographs: a frontal chest whose findings are given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 256
_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE  # coordinates in [0, 1)


@dataclass(frozen=True)
class Scene:
    """What one radiograph shows (everything the image depends on)."""

    age: float
    """Patient age in years: sets bone density (bright ribs and spine when young)."""
    cardiomegaly: bool
    """Enlarged heart shadow (cardiothoracic ratio ~0.6 instead of ~0.42)."""
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


def _lungs(cx: float, cy: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    left = _ellipse(cx - 0.2 * width, cy, 0.16 * width, 0.3)
    right = _ellipse(cx + 0.2 * width, cy, 0.16 * width, 0.3)
    return left, right


def _ribs(cy: float, density: float, lungs: np.ndarray, phase: float) -> np.ndarray:
    # Rib bands: curved stripes that sag towards the sides, visible over the lungs.
    curve = (_YY - cy) * 26.0 + ((_XX - 0.5) ** 2) * 30.0 + phase
    return (np.sin(curve) > 0.55) * lungs * (55.0 * density)


def _findings(scene: Scene, rng, cx, cy, width, left, right) -> np.ndarray:
    image = np.zeros((SIZE, SIZE), np.float32)
    if scene.effusion:
        sides = [left, right][: int(rng.integers(1, 3))] if rng.random() < 0.5 else [right]
        level = cy + float(rng.uniform(0.05, 0.15)) - 0.08 * np.abs(_XX - cx) / width
        for lung in sides:
            image += _soft(lung & (_YY > level), rng, 95.0)
    if scene.opacity:
        for _ in range(int(rng.integers(1, 4))):
            lung = left if rng.random() < 0.5 else right
            ys, xs = np.nonzero(lung)
            pick = int(rng.integers(len(ys)))
            oy, ox = ys[pick] / SIZE, xs[pick] / SIZE
            sigma = float(rng.uniform(0.045, 0.075))
            blob = np.exp(-(((_XX - ox) ** 2 + (_YY - oy) ** 2) / (2 * sigma**2)))
            image += blob * lung * float(rng.uniform(55, 80))
    if scene.nodule:
        for _ in range(int(rng.integers(1, 3))):
            lung = left if rng.random() < 0.5 else right
            ys, xs = np.nonzero(lung)
            pick = int(rng.integers(len(ys)))
            radius = float(rng.uniform(0.015, 0.028))
            image += _ellipse(xs[pick] / SIZE, ys[pick] / SIZE, radius, radius) * 110.0
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
    density = float(np.clip(1.25 - 0.009 * (scene.age - 20) + rng.normal(0, 0.05), 0.3, 1.4))
    image = np.full((SIZE, SIZE), 18.0, np.float32)
    image += _ellipse(cx, cy + 0.06, 0.46 * width, 0.5) * 85.0  # soft tissue of the trunk
    left, right = _lungs(cx, cy, width)
    lungs = left | right
    image -= lungs * (60.0 - 22.0 * scene.haze)
    image += _ribs(cy, density, lungs, float(rng.uniform(0, 2 * np.pi)))
    image += (np.abs(_XX - cx) < 0.035) * (_YY > 0.05) * (70.0 * density)  # spine
    ctr = rng.normal(0.6, 0.03) if scene.cardiomegaly else rng.normal(0.42, 0.03)
    heart_rx = ctr * 0.72 * width / 2  # thorax (lungs) spans ~0.72 of the width
    heart = _ellipse(cx + 0.03, cy + 0.17, heart_rx, 0.13 + 0.1 * (ctr - 0.42))
    image += _soft(heart & (_YY < cy + 0.3), rng, 75.0)
    image += _findings(scene, rng, cx, cy, width, left, right)
    image = image * rng.uniform(0.85, 1.15) + rng.normal(0, 6.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)
