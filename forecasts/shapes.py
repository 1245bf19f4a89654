"""Load archetypes as data: hour-beginning shares of a site's peak load."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadShape:
    """Hour-beginning shares of peak load [-] for working and non-working days, by month."""

    name: str
    workday: tuple[float, ...]
    non_workday: tuple[float, ...]
    monthly_factor: tuple[float, ...]
    description: str = ""

    def __post_init__(self) -> None:
        for field, size in (("workday", 24), ("non_workday", 24), ("monthly_factor", 12)):
            values = getattr(self, field)
            if len(values) != size or min(values) < 0 or max(values) > 1.5:
                raise ValueError(
                    f"load shape {self.name}.{field}: need {size} values in [0, 1.5], "
                    f"got {len(values)}"
                )
