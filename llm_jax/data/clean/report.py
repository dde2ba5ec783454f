"""What each cleaning stage saw, kept and dropped (and why), as a mergeable record and a table."""

import collections
import dataclasses


@dataclasses.dataclass
class StageReport:
  """Counts for one stage. `passed` documents were not its business (another clean level, no URL,
  not HTML) and went through untouched; they are part of `kept`. `seconds` is summed over workers."""
  input: int = 0
  kept: int = 0
  passed: int = 0
  input_bytes: int = 0
  passed_bytes: int = 0
  kept_bytes: int = 0
  seconds: float = 0.0
  dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  notes: collections.Counter = dataclasses.field(default_factory=collections.Counter)

  def merge(self, other: "StageReport") -> None:
    """Add `other`'s counts into this report."""
    for field in ("input", "kept", "passed", "input_bytes", "passed_bytes", "kept_bytes", "seconds"):
      setattr(self, field, getattr(self, field) + getattr(other, field))
    self.dropped.update(other.dropped)
    self.notes.update(other.notes)

  def to_dict(self) -> dict:
    out = dataclasses.asdict(self)
    out["seconds"] = round(self.seconds, 3)
    out["dropped"] = dict(sorted(self.dropped.items(), key=lambda kv: (-kv[1], kv[0])))
    out["notes"] = dict(sorted(self.notes.items()))
    return out

  @classmethod
  def from_dict(cls, d: dict) -> "StageReport":
    d = dict(d)
    d["dropped"] = collections.Counter(d.get("dropped", {}))
    d["notes"] = collections.Counter(d.get("notes", {}))
    return cls(**d)


Report = dict[str, StageReport]


def merge_reports(total: Report, part: Report) -> None:
  """Add each stage of `part` into `total` (stages keep their first-seen order)."""
  for name, stage in part.items():
    total.setdefault(name, StageReport()).merge(stage)


def report_to_dict(report: Report) -> dict:
  return {name: stage.to_dict() for name, stage in report.items()}


def markdown_table(report: Report, top_reasons: int = 4) -> str:
  """One row per stage: documents in/kept/dropped, megabytes in/kept, and the main drop reasons."""
  rows = ["| stage | docs in | not applied | kept | dropped | kept % | MB in | MB kept | top drop reasons |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
  for name, s in report.items():
    dropped = sum(s.dropped.values())
    share = 100.0 * s.kept / s.input if s.input else 100.0
    reasons = ", ".join(f"{r} {n}" for r, n in s.dropped.most_common(top_reasons))
    rows.append(f"| {name} | {s.input} | {s.passed} | {s.kept} | {dropped} | {share:.1f} | "
                f"{s.input_bytes / 1e6:.2f} | {s.kept_bytes / 1e6:.2f} | {reasons} |")
  return "\n".join(rows) + "\n"
