"""The gold anchor study as an application of `regimes`: what the core does not know about gold.

Registered through entry points (`pyproject.toml`, read by `regimes.plugins`), each module read
only where the core needs it:

- `series`: the gold price catalog entries (`regimes.series`);
- `factors`: the research's fiscal-risk and market factors with their series recipes
  (`regimes.factors`);
- `models/`: the model specs built on those factors (`regimes.models`);
- `descriptive` and `study`: the study's analyses of the data and its page panels
  (`regimes.studies`, named by `application = "gold"` in `experiments/gold/study.toml`).

The study itself, its experiments and its page layout are in `experiments/gold/`.
"""

from __future__ import annotations

from pathlib import Path

MODELS = Path(__file__).with_name("models")  # model specs (the `regimes.models` entry point)
