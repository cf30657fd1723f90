"""pianobridge: follow a pianist through a score and report on every key press."""

__version__ = "0.1.0"
