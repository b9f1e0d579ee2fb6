"""FINDINGS / IMPRESSION section extraction from free-text radiology reports (MIMIC-CXR style).

A header is a line-initial label followed by a colon (``IMPRESSION:``), in upper or title case,
possibly with the section text on the same line. Recognised variants:

- findings: ``FINDINGS``, ``FINDING``, ``PA AND LATERAL FINDINGS`` and other ``… FINDINGS``;
- impression: ``IMPRESSION(S)``, ``CONCLUSION(S)``, ``SUMMARY``, ``OPINION``, and the combined
  ``FINDINGS AND IMPRESSION(S)`` / ``FINDINGS/IMPRESSION`` (taken as the impression);
- any other header (``INDICATION:``, ``COMPARISON:``, ``NOTIFICATION:``, ``RECOMMENDATION(S):``…)
  ends the section before it.

raypi's stored report is the impression followed by the findings (a blank line between), so a
text encoder that truncates keeps the impression. A report with neither section keeps its whole
text (minus the ``FINAL REPORT`` banner) and is counted as such by the builders. Nothing here
logs or raises with report text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_HEADER = re.compile(r"^[ \t]*(?P<label>[A-Za-z][A-Za-z /&()\-]{1,60}?)[ \t]*:", re.MULTILINE)
_BANNER = re.compile(r"^\s*FINAL REPORT\s*$", re.MULTILINE | re.IGNORECASE)
_IMPRESSION = re.compile(
    r"^(?:impressions?|conclusions?|summary|opinion|findings\s*(?:and|/|&)\s*impressions?"
    r"|impressions?\s*(?:and|/|&)\s*recommendations?)$"
)
_FINDINGS = re.compile(r"^(?:[a-z ]*\s)?findings?$")

STATUSES = ("both", "impression_only", "findings_only", "neither", "empty")
"""How a report's sections were found (``report_text``'s second value)."""


@dataclass(frozen=True)
class Sections:
    """The sections found in one report (None where absent or empty)."""

    findings: str | None
    """Text of the FINDINGS section."""
    impression: str | None
    """Text of the IMPRESSION section (or a recognised variant)."""


def _kind(label: str) -> str | None:
    """Return "findings", "impression", "other" for a header label, None if not a header."""
    words = " ".join(label.split()).lower()
    if _IMPRESSION.match(words):
        return "impression"
    if _FINDINGS.match(words):
        return "findings"
    # Only all-caps labels count as other headers: "Patient was seen: ..." is prose, not one.
    return "other" if label.strip() == label.strip().upper() else None


def _clean(text: str) -> str | None:
    text = " ".join(text.split())
    return text or None


def extract_sections(text: str | None) -> Sections:
    """Find the FINDINGS and IMPRESSION sections of a report.

    When a section header occurs more than once (addenda), the parts are joined in order.

    Args:
        text: The report's full text (may be None).

    Returns:
        The sections; ``Sections(None, None)`` when neither is present.
    """
    if not text:
        return Sections(None, None)
    headers = [(match, _kind(match.group("label"))) for match in _HEADER.finditer(text)]
    headers = [(match, kind) for match, kind in headers if kind is not None]
    parts: dict[str, list[str]] = {"findings": [], "impression": []}
    for position, (match, kind) in enumerate(headers):
        end = headers[position + 1][0].start() if position + 1 < len(headers) else len(text)
        if kind in parts:
            parts[kind].append(text[match.end() : end])
    return Sections(
        findings=_clean(" ".join(parts["findings"])),
        impression=_clean(" ".join(parts["impression"])),
    )


def report_text(text: str | None) -> tuple[str | None, str]:
    """Return the text raypi stores for a report, and how its sections were found.

    Args:
        text: The report's full text.

    Returns:
        ``(report, status)``: report is impression + blank line + findings where present, the
        whole cleaned text when neither section exists, None for an empty report; status is one
        of ``STATUSES``.
    """
    sections = extract_sections(text)
    kept = [part for part in (sections.impression, sections.findings) if part]
    if sections.impression and sections.findings:
        return "\n\n".join(kept), "both"
    if kept:
        return kept[0], "impression_only" if sections.impression else "findings_only"
    whole = _clean(_BANNER.sub(" ", text or ""))
    return whole, ("neither" if whole else "empty")


def section_counts(statuses: Iterable[str]) -> dict[str, int]:
    """Count report statuses for a build summary (every status present, zeros included)."""
    counts = Counter(statuses)
    return {status: int(counts.get(status, 0)) for status in STATUSES}
