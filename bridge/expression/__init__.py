"""The expression model: expressive rendering of a score and assessment of a performance.

Runtime (numpy only): ``features`` (score features, note -> beat -> bar -> phrase tree),
``network`` (the forward pass), ``render`` (CSV/MIDI renditions), ``assess`` (per-phrase
assessment; the core API for live ``expression`` events), ``calibrate`` (expected ranges).
Training (torch): ``data`` ((n)ASAP targets), ``model``, ``train``. See docs/expression.md.
"""
