"""The national ceilings (高級中等學校學生學習歷程檔案作業要點): a platform-level, versioned object.

A school's supplementary rules (補充規定) may be stricter than these, never looser
(DESIGN.md §3). The ceilings live in code because they are what the code checks; a change by the
national agency is a new entry in :data:`NATIONAL_VERSIONS` with the day it takes effect, so a
rule set adopted before the change is still judged by the rules of its own day.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

#: One megabyte as the central database counts it (4 MB = 4,194,304 bytes).
MB = 1024 * 1024

SEMESTER = "semester"
YEAR = "year"
SELECTION_PERIODS = (SEMESTER, YEAR)

#: The file types the central database accepts, in display order.
FILE_TYPES = ("pdf", "jpg", "png", "mp3", "mp4")

_FILE_CEILINGS = (("pdf", 4 * MB), ("jpg", 4 * MB), ("png", 4 * MB), ("mp3", 10 * MB), ("mp4", 10 * MB))


@dataclass(frozen=True)
class NationalRules:
    """The national ceilings in force from ``effective_from`` until the next version."""

    effective_from: date
    reference: str
    #: course learning outcomes a student may select for the central database, per period
    course_outcome_selection_cap: int
    course_outcome_selection_period: str
    #: diverse-performance items a student may select, per academic year
    performance_selection_cap_per_year: int = 10
    performance_summary_max_chars: int = 800
    performance_summary_max_images: int = 3
    #: (file type, maximum size in bytes); schools may set lower sizes or drop types
    file_size_ceilings: tuple[tuple[str, int], ...] = _FILE_CEILINGS
    #: the upload window stays open at least this long after the semester-end ceremony
    #: (not for grade 12, semester 2, whose portfolio closes with the university application)
    min_upload_window_days: int = 14
    min_receipt_confirmation_days: int = 3
    #: the short description (簡述) of a course outcome or performance item
    description_max_chars: int = 100
    #: the central database seals a student's data this long after the university application
    central_seal_years: int = 5

    @property
    def file_types(self) -> dict[str, int]:
        """file type → ceiling in bytes."""
        return dict(self.file_size_ceilings)

    @property
    def course_outcomes_per_semester(self) -> int:
        """The most a student may select within one semester (a yearly cap may fall in one)."""
        return self.course_outcome_selection_cap

    @property
    def course_outcomes_per_year(self) -> int:
        return selection_per_year(self.course_outcome_selection_cap, self.course_outcome_selection_period)

    def to_dict(self) -> dict:
        return {
            "effective_from": self.effective_from.isoformat(),
            "reference": self.reference,
            "course_outcomes": {
                "selection_cap": self.course_outcome_selection_cap,
                "selection_period": self.course_outcome_selection_period,
            },
            "performances": {"selection_cap_per_year": self.performance_selection_cap_per_year},
            "performance_summary": {
                "max_chars": self.performance_summary_max_chars,
                "max_images": self.performance_summary_max_images,
            },
            "uploads": {
                "file_types": self.file_types,
                "description_max_chars": self.description_max_chars,
                "min_window_days": self.min_upload_window_days,
                "window_exception": {"grade": 12, "semester": 2},
            },
            "receipt": {"min_confirmation_days": self.min_receipt_confirmation_days},
            "central_seal_years": self.central_seal_years,
        }


def selection_per_year(cap: int, period: str) -> int:
    """The most a ``cap`` per ``period`` lets a student select in one academic year (two semesters)."""
    return cap * 2 if period == SEMESTER else cap


#: Oldest first. Each version holds until the next one's ``effective_from``.
NATIONAL_VERSIONS: tuple[NationalRules, ...] = (
    # 108學年度: the 2019 rules, three course outcomes per semester.
    NationalRules(
        effective_from=date(2019, 8, 1),
        reference="高級中等學校學生學習歷程檔案作業要點（108學年度起）",
        course_outcome_selection_cap=3,
        course_outcome_selection_period=SEMESTER,
    ),
    # 111學年度: six course outcomes per academic year.
    NationalRules(
        effective_from=date(2022, 8, 1),
        reference="高級中等學校學生學習歷程檔案作業要點（111學年度起）",
        course_outcome_selection_cap=6,
        course_outcome_selection_period=YEAR,
    ),
)


def national_rules_on(day: date) -> NationalRules:
    """The national rules in force on ``day``; before the first version, the first version."""
    current = NATIONAL_VERSIONS[0]
    for version in NATIONAL_VERSIONS:
        if version.effective_from <= day:
            current = version
    return current
