"""An application's part of a study page: the analyses of the data and the panels that need
code the core does not have, registered by a plugin package (`regimes.studies` entry-point
group, `regimes.plugins`) and used by a study whose study.toml names it (`application = NAME`).

Everything else a page shows specially comes from the study.toml itself: the panels it picks
(`[page] panels`, `[answer] panels`), the runs' figures it copies (`[[page.figures]]`), the
target it is about (`[page] target`) and the wording of its answer (`[answer] question`,
`subject`, `no_anchor`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regimes import plugins
from regimes.study.panels import Panel
from regimes.study.quantities import Estimate

# a quantity the application reads off its data for a brief row with source = "descriptive":
# (the application's data, the quantity's argument after `kind:`) -> our estimate
Quantity = Callable[[Any, str], Estimate]


def _no_data(data_dir: Path) -> None:
    return None


@dataclass(frozen=True)
class Application:
    """What an application adds to the studies that name it.

    `load(data_dir)` reads the data its quantities and panels use (once per page, through
    `PageContext.data`); `quantities` answer the brief's rows with `source = "descriptive"`
    (`quantity = "KIND:ARGUMENT"`, by KIND); `panels` draw page panels a study.toml can name
    beside the core's (`regimes.study.panels.PANELS`; a name the core has is refused)."""

    name: str
    description: str
    load: Callable[[Path], Any] = _no_data
    quantities: Mapping[str, Quantity] = field(default_factory=dict)
    panels: Mapping[str, Panel] = field(default_factory=dict)


APPLICATIONS: plugins.Registry[Application] = plugins.Registry(
    "study application", plugins.STUDIES, Application, lambda a: a.name
)
