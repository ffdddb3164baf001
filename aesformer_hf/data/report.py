"""The build report: every row a builder dropped or fixed, with its id and the reason.

A build over AVA's 255k rows must never stop on one bad row, and must never lose one silently. So
parsers and the image stage do not raise on bad rows: they call :meth:`BuildReport.skip` (the row
is not in the output), :meth:`BuildReport.repair` (the row is in the output after a fix: an image
converted to RGB, a text decoded with a fallback encoding) or :meth:`BuildReport.warn` (kept as it
is, but worth a look). The report is written as ``build_report.csv`` beside the shards and
summarised at the end of a build.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SKIPPED = "skipped"
REPAIRED = "repaired"
WARNING = "warning"
REPORT_COLUMNS = ("image_id", "action", "code", "detail", "location")


@dataclass(frozen=True)
class ReportEntry:
    """One line of the report.

    ``code`` is a short machine-readable reason (``missing_image``, ``duplicate_id``, ...);
    ``detail`` says it for a person; ``location`` names the file and line (or split) it came from.
    """

    image_id: str
    action: str
    code: str
    detail: str
    location: str = ""


@dataclass
class BuildReport:
    """Collects :class:`ReportEntry` rows in the order they happen."""

    entries: list[ReportEntry] = field(default_factory=list)

    def skip(self, image_id: str, code: str, detail: str, location: str = "") -> None:
        self.entries.append(ReportEntry(str(image_id), SKIPPED, code, detail, location))

    def repair(self, image_id: str, code: str, detail: str, location: str = "") -> None:
        self.entries.append(ReportEntry(str(image_id), REPAIRED, code, detail, location))

    def warn(self, image_id: str, code: str, detail: str, location: str = "") -> None:
        self.entries.append(ReportEntry(str(image_id), WARNING, code, detail, location))

    def by_action(self, action: str) -> list[ReportEntry]:
        return [entry for entry in self.entries if entry.action == action]

    def counts(self) -> dict[str, Counter]:
        """``{action: Counter(code -> number of entries)}`` for the actions that occurred."""
        counts: dict[str, Counter] = {}
        for entry in self.entries:
            counts.setdefault(entry.action, Counter())[entry.code] += 1
        return counts

    def write_csv(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(REPORT_COLUMNS)
            for entry in self.entries:
                writer.writerow([entry.image_id, entry.action, entry.code, entry.detail, entry.location])
        return path

    def summary(self, dataset_name: str, rows_per_split: Mapping[str, int]) -> str:
        """A few lines for the end of a build: rows written per split, then counts per reason."""
        written = ", ".join(f"{split} {count:,}" for split, count in rows_per_split.items())
        lines = [f"{dataset_name}: wrote {sum(rows_per_split.values()):,} rows ({written})"]
        empty = [split for split, count in rows_per_split.items() if not count]
        if empty:
            lines.append(f"  empty: {', '.join(empty)} (every row skipped; left out of the dataset)")
        counts = self.counts()
        for action in (SKIPPED, REPAIRED, WARNING):
            if action not in counts:
                lines.append(f"  {action}: 0")
                continue
            total = sum(counts[action].values())
            reasons = ", ".join(f"{code} {number:,}" for code, number in counts[action].most_common())
            lines.append(f"  {action}: {total:,} ({reasons})")
        return "\n".join(lines)
