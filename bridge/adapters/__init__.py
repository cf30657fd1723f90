"""Adapters from the bridge's events to what other programs read: DAW dialects over OSC,
annotated MusicXML scores for notation programs."""
