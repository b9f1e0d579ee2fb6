"""One CT volume → one anterior–posterior DRR JPEG, with Plastimatch (``plastimatch drr``).

Steps: read the volume's geometry (``plastimatch header``); resample it to identity direction
cosines in DICOM LPS coordinates (``plastimatch resample`` — ``drr`` ignores direction cosines,
so a NIfTI volume stored right-to-left would otherwise be projected off-centre); project with
the X-ray source anterior (detector normal ``--nrm 0 -1 0``, source at isocenter + SAD·nrm)
and the detector's top row superior (``--vup 0 0 1``); scale the line integrals min–max to
0–255, equalise the histogram (OpenCV) and store a JPEG of quality 95.

Orientation (checked by tests/test_build_inspect.py on a synthetic volume): the output is
displayed like every chest radiograph, as if facing the patient — superior at the top and the
patient's LEFT on the image's RIGHT. Plastimatch writes the ``--vup`` row first and, with this
normal, columns run from the patient's right to left, so the file order needs no flip.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from raypi import io

INSTALL_HINT = (
    "plastimatch is not installed (no `plastimatch` on PATH); the INSPECT build needs it for "
    "the DRRs. On Debian/Ubuntu: `sudo apt-get install -y plastimatch`; elsewhere see "
    "https://plastimatch.org"
)


class PlastimatchMissing(RuntimeError):
    """``plastimatch`` is not on PATH."""


class DrrError(RuntimeError):
    """Plastimatch failed on a volume (the message carries its exit code and last output)."""


@dataclass(frozen=True)
class DrrSettings:
    """Geometry and encoding of the DRRs (defaults: a 1.5x magnification chest radiograph)."""

    resolution: int = 512
    """Detector pixels per side (square image)."""
    sad: float = 1000.0
    """Source–axis (isocenter) distance, mm."""
    sid: float = 1500.0
    """Source–image (detector) distance, mm."""
    margin: float = 1.05
    """Detector side = largest of the volume's left–right and head–foot extents × SID/SAD × this."""
    jpeg_quality: int = 95
    """JPEG quality of the stored image (the study's 95)."""
    timeout_s: float = 900.0
    """Seconds one Plastimatch call may take."""


def plastimatch() -> str:
    """Return the path of the ``plastimatch`` executable.

    Raises:
        PlastimatchMissing: If it is not installed, with how to install it.
    """
    path = shutil.which("plastimatch")
    if path is None:
        raise PlastimatchMissing(INSTALL_HINT)
    return path


def _run(args: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(
            [plastimatch(), *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DrrError(f"plastimatch {args[0]} timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DrrError(f"plastimatch {args[0]} exited with {done.returncode}: {' | '.join(tail)}")
    return done.stdout


def volume_geometry(volume: str | Path, timeout: float = 120.0) -> dict[str, np.ndarray]:
    """Return origin, size, spacing and direction (3x3, world axis × voxel axis) of a volume."""
    values = {}
    for line in _run(["header", str(volume)], timeout).splitlines():
        key, _, rest = line.partition("=")
        values[key.strip().lower()] = rest.split()
    try:
        return {
            "origin": np.array(values["origin"], float),
            "size": np.array(values["size"], int),
            "spacing": np.array(values["spacing"], float),
            "direction": np.array(values["direction"], float).reshape(3, 3),
        }
    except (KeyError, ValueError):
        raise DrrError(f"plastimatch header: unexpected output for {Path(volume).name}") from None


def lps_grid(geometry: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (origin, spacing, size) of the same voxel grid with identity directions."""
    direction, spacing, size = geometry["direction"], geometry["spacing"], geometry["size"]
    corners = np.array(
        [
            geometry["origin"] + direction @ (spacing * np.array(index))
            for index in product(*[(0, n - 1) for n in size])
        ]
    )
    axis = np.abs(direction).argmax(axis=1)  # voxel axis that runs along each world axis
    return corners.min(axis=0), spacing[axis], size[axis]


def _fmt(values) -> str:
    return " ".join(f"{value:g}" for value in values)


def read_pfm(path: str | Path) -> np.ndarray:
    """Read a Plastimatch PFM image as float32 [rows, cols] in file order."""
    with open(path, "rb") as handle:
        handle.readline()
        width, height = (int(value) for value in handle.readline().split())
        scale = float(handle.readline())
        data = np.frombuffer(handle.read(), dtype="<f4" if scale < 0 else ">f4")
    return data[: width * height].reshape(height, width).astype(np.float32)


def project(volume: str | Path, settings: DrrSettings, workdir: Path) -> np.ndarray:
    """Return the AP line-integral image of a volume (float32, radiograph orientation)."""
    origin, spacing, size = lps_grid(volume_geometry(volume))
    resampled = workdir / "volume.mha"
    _run(
        [
            "resample",
            "--input",
            str(volume),
            "--output",
            str(resampled),
            "--direction-cosines",
            "identity",
            "--origin",
            _fmt(origin),
            "--spacing",
            _fmt(spacing),
            "--dim",
            _fmt(size),
            "--default-value",
            "-1000",
        ],
        settings.timeout_s,
    )
    extent = spacing * size
    side = max(extent[0], extent[2]) * settings.sid / settings.sad * settings.margin
    center = origin + spacing * (size - 1) / 2
    _run(
        [
            "drr",
            "-A",
            "cpu",
            "-t",
            "pfm",
            "-r",
            f"{settings.resolution} {settings.resolution}",
            "-z",
            f"{side:g} {side:g}",
            "-o",
            _fmt(center),
            "--nrm",
            "0 -1 0",
            "--vup",
            "0 0 1",
            "--sad",
            f"{settings.sad:g}",
            "--sid",
            f"{settings.sid:g}",
            "-O",
            str(workdir / "drr"),
            str(resampled),
        ],
        settings.timeout_s,
    )
    return read_pfm(workdir / "drr0000.pfm")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Min–max scale to 0–255 and equalise the histogram (as MIMIC-CXR-JPG was made)."""
    import cv2

    image = np.nan_to_num(image.astype(np.float64))
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) * 255.0 if high > low else np.zeros_like(image)
    return cv2.equalizeHist(np.round(scaled).astype(np.uint8))


def render(volume: str | Path, out: str, settings: DrrSettings | None = None) -> None:
    """Render one volume's DRR and write it as a JPEG (atomically; local or ``s3://``).

    Args:
        volume: The CT volume (NIfTI or any format Plastimatch reads).
        out: Destination JPEG path.
        settings: Geometry and encoding; defaults when None.

    Raises:
        PlastimatchMissing: If Plastimatch is not installed.
        DrrError: If Plastimatch fails or the JPEG cannot be encoded.
    """
    import cv2

    settings = settings or DrrSettings()
    with tempfile.TemporaryDirectory(prefix="raypi-drr-") as workdir:
        image = to_uint8(project(volume, settings, Path(workdir)))
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, settings.jpeg_quality])
    if not ok:
        raise DrrError(f"could not encode the DRR of {Path(volume).name} as JPEG")
    io.write_bytes(out, encoded.tobytes())
