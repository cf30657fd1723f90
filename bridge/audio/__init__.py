"""Audio input: files and live devices in, detected key presses out.

``features`` turns samples into log-mel frames (streaming, causal), ``detector`` turns
frames into note events with the shipped network, ``files`` and ``live`` read audio
from files and sound devices; ``train`` (torch) renders MIDI to audio and trains the
network.
"""
