"""Section extraction (raypi.data.reports) on realistic and messy report texts.

Report text is patient data in real use: assertions compare lengths, hashes and booleans only,
so a failure never prints a report.
"""

from __future__ import annotations

import hashlib
import textwrap

import pytest

from raypi.data.reports import STATUSES, extract_sections, report_text, section_counts


def digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()[:12]


def norm(text: str) -> str | None:
    return " ".join(text.split()) or None


MIMIC_STYLE = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with new onset ascites  // eval for infection

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  None.

 FINDINGS:

 There is no focal consolidation, pleural effusion or pneumothorax.  Bilateral
 nodular opacities that most likely represent nipple shadows.  The
 cardiomediastinal silhouette is normal.

 IMPRESSION:

 No acute cardiopulmonary process.
"""

# (name, text, expected findings, expected impression)
CASES = [
    (
        "mimic style",
        MIMIC_STYLE,
        "There is no focal consolidation, pleural effusion or pneumothorax. Bilateral nodular "
        "opacities that most likely represent nipple shadows. The cardiomediastinal silhouette is "
        "normal.",
        "No acute cardiopulmonary process.",
    ),
    (
        "same-line text, title case",
        "Findings: Lungs clear.\nImpression: Normal chest.",
        "Lungs clear.",
        "Normal chest.",
    ),
    (
        "plural and notification after",
        " IMPRESSIONS:  1. Small effusion.\n 2. No pneumothorax.\n\n"
        " NOTIFICATION:  Dr. ___ was paged at 10:15.",
        None,
        "1. Small effusion. 2. No pneumothorax.",
    ),
    (
        "conclusion variant",
        "FINDINGS: Mild edema.\n\nCONCLUSION: Mild pulmonary edema.",
        "Mild edema.",
        "Mild pulmonary edema.",
    ),
    (
        "combined header",
        " WET READ: ___ ___ 9:40 PM\n  no ptx\n\n FINDINGS AND IMPRESSION:  Stable tube.",
        None,
        "Stable tube.",
    ),
    (
        "prefixed findings header",
        "PA AND LATERAL CHEST RADIOGRAPH FINDINGS: Heart normal.\nIMPRESSION: Normal.",
        "Heart normal.",
        "Normal.",
    ),
    (
        "addendum repeats impression",
        "FINDINGS: Line in place.\nIMPRESSION: Line ok.\n\n"
        "ADDENDUM: reviewed.\nIMPRESSION: Line tip in SVC.",
        "Line in place.",
        "Line ok. Line tip in SVC.",
    ),
    (
        "colon in prose is not a header",
        "FINDINGS:\n Heart size: normal. Lungs: clear.\n"
        "Tubes and lines: none.\nIMPRESSION: Normal.",
        "Heart size: normal. Lungs: clear. Tubes and lines: none.",
        "Normal.",
    ),
    (
        "recommendation ends impression",
        "IMPRESSION: Nodule.\nRECOMMENDATION(S): CT in 3 months.",
        None,
        "Nodule.",
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "findings", "impression"), CASES, ids=[c[0] for c in CASES]
)
def test_sections_of_realistic_texts(name, text, findings, impression):
    sections = extract_sections(text)
    assert digest(sections.findings) == digest(findings)
    assert digest(sections.impression) == digest(impression)


def test_report_text_keeps_impression_first_then_findings():
    report, status = report_text(MIMIC_STYLE)
    sections = extract_sections(MIMIC_STYLE)
    assert status == "both"
    assert report.startswith(sections.impression)
    assert report.endswith(sections.findings)
    assert len(report) == len(sections.impression) + 2 + len(sections.findings)


def test_report_without_sections_keeps_its_text_and_is_counted():
    text = "                FINAL REPORT\n PORTABLE CHEST.\n Lines unchanged.  No change.\n"
    report, status = report_text(text)
    assert status == "neither"
    assert report is not None and "FINAL REPORT" not in report
    assert len(report) == len("PORTABLE CHEST. Lines unchanged. No change.")
    assert report_text("   \n")[1] == "empty" and report_text(None) == (None, "empty")
    assert report_text("FINDINGS: clear lungs.")[1] == "findings_only"
    counts = section_counts(["both", "neither", "both"])
    assert counts["both"] == 2 and counts["neither"] == 1 and set(counts) == set(STATUSES)


def _as_mimic_text(findings: str, impression: str) -> str:
    def wrap(text):
        return "\n ".join(textwrap.wrap(text, 75, break_on_hyphens=False, break_long_words=False))

    text = " EXAMINATION:  CHEST (PA AND LAT)\n\n INDICATION:  XXXX-year-old with XXXX.\n\n"
    text += " COMPARISON:  XXXX\n\n"
    text += f" FINDINGS:\n\n {wrap(findings)}\n\n" if findings else ""
    text += f" IMPRESSION:\n\n {wrap(impression)}\n" if impression else ""
    return "                                 FINAL REPORT\n" + text


def test_real_indiana_reports_round_trip():
    """Real IU reports, laid out like MIMIC-CXR files: the sections come back verbatim."""
    pytest.importorskip(
        "torchxrayvision", reason="the IU reports ship in the torchxrayvision wheel"
    )
    from raypi.data._iu_reports import load_reports

    reports = load_reports()
    assert len(reports) > 3000
    matched = 0
    for report in reports:
        sections = extract_sections(_as_mimic_text(report.findings, report.impression))
        matched += sections.findings == norm(report.findings) and sections.impression == norm(
            report.impression
        )
    # A handful of IU impressions contain "FINDINGS:" in their own text; all others must match.
    assert matched / len(reports) > 0.998
