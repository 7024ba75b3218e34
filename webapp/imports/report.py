"""What an import did, conversation by conversation: its report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Outcome:
    """What became of one conversation of the export."""

    title: str
    status: str  # "imported", "already" (imported before) or "skipped"
    public_id: str | None = None
    reason: str = ""


@dataclass
class Report:
    """What an import did, conversation by conversation, and what stopped it, if anything."""

    outcomes: list[Outcome] = field(default_factory=list)
    problem: str | None = None

    def having(self, status: str) -> list[Outcome]:
        """The outcomes with this status."""
        return [outcome for outcome in self.outcomes if outcome.status == status]
