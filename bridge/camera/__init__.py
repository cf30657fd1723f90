"""The camera side: hand landmarks from images and video (MediaPipe), on the same clock
as MIDI. Adapters only; what the landmarks mean for the music lives in the core."""
