"""A hidden Markov model composed of parts, as dynamax composes `HMM(initial, transitions,
emissions)`: the Markov-switching and panel families are configurations of these parts.

- `space.py`: the expanded state space (lagged regimes of an AR form; the product of an anchor
  chain and a volatility chain);
- `data.py`: the arrays a chain model sees (targets over a `series` dimension, anchor terms,
  transition covariates), put on the model's scale by the frame's `Scaling`;
- `transitions.py`: initial-state distributions and transitions (constant, covariate-driven,
  change point, one chain per series), each configured in its constructor and declaring its
  own parameters as a NamedTuple;
- `emissions.py`: anchors (regime-specific or pooled across series), scales, noise laws
  (Normal, Student-t) and forms (level with AR lags, error correction, loadings on changes);
- `model.py`: the parts joined once into the marginalised likelihood and the per-draw graphs
  the outputs reuse (one compiled function per structure);
- `passes.py`: filter, smoother and sampled paths for every posterior draw (`ChainPasses`);
- `simulate.py`: data drawn from the model's own one-step predictive.
"""
