"""Summarise panel SBC tables (`sbc_panel.py` output): 90% coverage per parameter group with its
binomial band, rank uniformity (chi-square over bins and the ECDF band of
`regimes.sweep.sbc.uniformity`, each group's ranks pooled), and divergences by the smallest
true τ (where the non-centred hierarchy's geometry is hardest).

    python validation/sbc_panel_summary.py validation/records/sbc_panel_stack12_s1.csv \
        validation/results/sbc_panel_ta99.csv

Several tables of one seed combine by simulation number: a later table's row replaces an
earlier one's (a refit of the same simulation, e.g. with another target_accept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from regimes.sweep.sbc import uniformity

N_KEEP = 99  # ranks 0..99 among thinned draws (sbc_panel.N_KEEP)
GROUPS = ("mu", "tau", "beta")


def combine(paths: list[Path]) -> pd.DataFrame:
    """One row per simulation, the last table's row where several have it; `source` says which."""
    frames = [pd.read_csv(p).assign(source=p.stem) for p in paths]
    table = pd.concat(frames).drop_duplicates("sim", keep="last")
    return table.sort_values("sim").reset_index(drop=True)


def group_lines(table: pd.DataFrame) -> list[str]:
    """Coverage, band and rank uniformity per parameter group."""
    lines = [f"{'group':<6}{'values':>7}{'cover90':>9}{'± 2 se':>8}{'chi2 p':>8}{'ECDF':>6}  bins"]
    for name in GROUPS:
        ranks = np.concatenate([np.array(r.split(), dtype=int) for r in table[f"{name}_ranks"]])
        units = len(ranks) // len(table)
        cover = float(table[f"{name}_cover"].mean())
        se = np.sqrt(0.09 / len(ranks))
        check = uniformity(ranks[:, None], N_KEEP)
        counts = " ".join(map(str, check["counts"][:, 0]))
        band = "in" if check["uniform"][0] else "OUT"
        lines.append(
            f"{name:<6}{len(ranks):>7}{cover:>9.3f}{2 * se:>8.3f}"
            f"{check['chi2_p'][0]:>8.2f}{band:>6}  {counts}  ({units} per simulation)"
        )
    return lines


def divergence_lines(table: pd.DataFrame) -> list[str]:
    """Fits with divergent transitions, overall and by quartile of the smallest true τ."""
    div = table["divergences"] > 0
    lines = [
        f"fits with divergences: {int(div.sum())} of {len(table)} "
        f"(total {int(table['divergences'].sum())}, at most {int(table['divergences'].max())})"
    ]
    edges = np.quantile(table["tau_min"], [0, 0.25, 0.5, 0.75, 1])
    quartile = np.clip(np.searchsorted(edges, table["tau_min"], side="right") - 1, 0, 3)
    for q in range(4):
        part = table[quartile == q]
        lines.append(
            f"  smallest true tau {edges[q]:.3f}-{edges[q + 1]:.3f}: "
            f"{int((part['divergences'] > 0).sum())} of {len(part)}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the summary of the combined tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tables", nargs="+", type=Path)
    args = ap.parse_args(argv)
    table = combine(args.tables)
    sources = ", ".join(f"{s}: {n}" for s, n in table["source"].value_counts().sort_index().items())
    print(f"{len(table)} simulations ({sources})")
    print("\n".join(group_lines(table)))
    print("\n".join(divergence_lines(table)))
    stacked = int((table["stacked_modes"] > 1).sum())
    print(f"fits that stacked several modes: {stacked} of {len(table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
