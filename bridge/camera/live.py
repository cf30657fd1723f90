"""The camera in the live bridge: frames read and searched for hands on their own
threads, handed to the bridge as `HandFrame` events on its clock. A camera that cannot
be opened, or that stops, is reported and the bridge goes on with MIDI alone."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bridge.camera.detect import HandDetector
from bridge.camera.frames import CameraCapture, Frame
from bridge.errors import UserError
from bridge.events import Event, HandFrame, Status


class CameraInput:
    def __init__(
        self, source: str, submit: Callable[[Event], None], clock: Callable[[], float], hand_model: str | None = None
    ):
        self.submit, self.clock = submit, clock
        self.capture: CameraCapture | None = None
        self.frames = 0
        try:
            from bridge.camera.handmodel import hand_model as find_model

            self.detector = HandDetector(find_model(hand_model), tiles="none", video=True)
            self.capture = CameraCapture(int(source) if source.isdigit() else source, self._frame, clock, self._ended)
        except UserError as e:
            print(f"pianobridge: camera off ({e}); following from MIDI alone", file=sys.stderr)
            submit(Status(clock(), "camera_lost", str(e)))

    def _frame(self, frame: Frame) -> None:
        hands = self.detector.detect(frame.rgb, int(frame.t * 1000))
        self.frames += 1
        self.submit(HandFrame(round(frame.t, 4), tuple(h.to_dict() for h in hands)))

    def _ended(self) -> None:
        self.submit(Status(self.clock(), "camera_lost", f"after {self.frames} frames"))

    def start(self) -> None:
        if self.capture is not None:
            self.capture.start()

    def close(self) -> str:
        """Stop, and say how many frames were seen and dropped."""
        if self.capture is None:
            return "camera off"
        self.capture.close()
        self.detector.close()
        return f"camera: {self.frames} frames searched, {self.capture.dropped} skipped to keep up"
