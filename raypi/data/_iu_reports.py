"""Indiana University chest X-ray reports, read from the ``torchxrayvision`` wheel (no network)."""

from __future__ import annotations

import importlib.util
import tarfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ARCHIVE = "NLMCXR_reports.tgz"


@dataclass(frozen=True)
class IUReport:
    """One report of the collection."""

    uid: str
    """The collection's report id, e.g. ``"CXR1"``."""
    findings: str
    """FINDINGS section ('' when absent)."""
    impression: str
    """IMPRESSION section ('' when absent)."""
    mesh: frozenset[str]
    """Major MeSH headings without qualifiers, e.g. ``{"Cardiomegaly", "Opacity"}``."""

    @property
    def text(self) -> str:
        """The report as raypi stores it: the findings and impression sections."""
        parts = [f"FINDINGS: {self.findings}" if self.findings else ""]
        parts.append(f"IMPRESSION: {self.impression}" if self.impression else "")
        return " ".join(part for part in parts if part)


def archive_path() -> Path:
    """Return the path of the report archive inside the installed ``torchxrayvision`` package.

    Raises:
        FileNotFoundError: If torchxrayvision is not installed or lacks the archive.
    """
    spec = importlib.util.find_spec("torchxrayvision")  # locate without importing torch
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("torchxrayvision is not installed; `pip install torchxrayvision`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / ARCHIVE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed torchxrayvision")
    return path


def _parse(xml_bytes: bytes) -> IUReport:
    root = ElementTree.fromstring(xml_bytes)
    sections = {node.get("Label"): (node.text or "").strip() for node in root.iter("AbstractText")}
    uid = root.find("uId").get("id")
    mesh = frozenset(
        (node.text or "").split("/")[0].strip() for node in root.iter("major") if node.text
    )
    return IUReport(uid, sections.get("FINDINGS", ""), sections.get("IMPRESSION", ""), mesh)


@lru_cache(maxsize=2)
def load_reports(path: str | None = None) -> tuple[IUReport, ...]:
    """Return every report that has a findings or impression section, sorted by id number.

    Args:
        path: The archive; the installed torchxrayvision's when None.

    Returns:
        The reports (3,927 in torchxrayvision 1.x).
    """
    reports = []
    with tarfile.open(path or archive_path(), "r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.endswith(".xml"):
                report = _parse(archive.extractfile(member).read())
                if report.findings or report.impression:
                    reports.append(report)
    return tuple(sorted(reports, key=lambda report: int(report.uid.removeprefix("CXR"))))
