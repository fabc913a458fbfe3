"""How a re-label student's fidelity compares with the majority rate, in numbers a page can quote (ours, issue 26/29).

The fidelity is the student's agreement with the teacher's re-labels on held-out synthetic samples; the majority rate
is what always answering the more common of those labels would score. A student at or below the majority rate
explains no more than a constant does, so its map is flagged (status :data:`BELOW_MAJORITY`) and every note that
compares the two says both numbers and by how many points they differ. The numbers are the ones shown (percentages
rounded to one decimal), so the difference a page quotes is the difference of the two numbers it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: the per-image status of a fitted student that does not beat the majority rate on held-out samples
BELOW_MAJORITY = "below_majority"
#: a student within this many points above the majority rate is "near" it: it barely beats a constant
NEAR_POINTS = 5.0


def _percent(share: float) -> float:
    return round(100.0 * float(share), 1)


@dataclass(frozen=True)
class FidelityCheck:
    """The student's fidelity against the majority rate, both in percent (one decimal), and their difference."""

    fidelity: float  # percent of held-out samples where the student agrees with the teacher
    majority_rate: float  # percent a constant answer (the more common label) would score

    @classmethod
    def of(cls, fidelity: float, majority_rate: float) -> FidelityCheck:
        """From shares in [0, 1] (as :class:`~workbench.relabel.RelabelExplanation` holds them)."""
        return cls(_percent(fidelity), _percent(majority_rate))

    @property
    def points(self) -> float:
        """Fidelity minus majority rate, in percentage points (negative: below)."""
        return round(self.fidelity - self.majority_rate, 1)

    @property
    def verdict(self) -> Literal["below", "near", "above"]:
        """``"below"``: no better than a constant (at or under the majority rate); ``"near"``: at most
        :data:`NEAR_POINTS` above it; ``"above"``: clearly better."""
        if self.points <= 0:
            return "below"
        return "near" if self.points <= NEAR_POINTS else "above"

    def sentence(self) -> str:
        """The comparison in words, with both numbers and the difference."""
        head = f"student agrees with the teacher on {self.fidelity:.1f} % of held-out samples, "
        rate = f"the majority rate {self.majority_rate:.1f} %"
        if self.verdict == "below":
            gap = f"{-self.points:.1f} points BELOW {rate}" if self.points < 0 else f"level with {rate}"
            return head + gap + ": this map explains no more than a constant answer would"
        gap = f"{self.points:.1f} points above {rate}"
        if self.verdict == "near":
            return head + gap + ": it hardly beats always answering the more common label, so read its map with care"
        return head + gap


def fidelity_status(status: str, fidelity: float, majority_rate: float) -> str:
    """``status`` unchanged, except a fitted student (``ok`` / ``out_of_band``) at or below the majority rate, which
    becomes :data:`BELOW_MAJORITY`."""
    fitted = status in ("ok", "out_of_band")
    return BELOW_MAJORITY if fitted and FidelityCheck.of(fidelity, majority_rate).verdict == "below" else status
