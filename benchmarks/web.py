"""The score page under a real performance: first render and cursor lag, in the browser.

    python benchmarks/web.py [--speed 1] [--pages 1] [--screenshot docs/img/web_page.png]

Runs `pianobridge demo --web` (the bundled sonatina practice run, 618 key presses with
mistakes and a restart, on the 2,090-note sonatina: 8 engraved pages) in real time and
opens the page in Debian's headless Chromium (playwright, pointed at /usr/bin/chromium).
Prints: how long the bridge took to engrave the score, how long the page took from
navigation to the score drawn, and the cursor lag per note event: from the moment the
bridge emitted it (its wall clock, stamped on the consumer thread) to the page's DOM
update (cursor moved, note coloured), and to the next animation frame after that. Both
ends read the same machine's clock. ``--pages N`` opens N pages at once (teacher and
player); ``--screenshot`` saves the first page mid-performance as a small PNG.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--speed", type=float, default=1.0, help="the demo's speed (1: real time)")
    ap.add_argument("--pages", type=int, default=1, help="pages open at once")
    ap.add_argument("--screenshot", metavar="PNG", help="save the page mid-performance here")
    ap.add_argument("--at", type=float, default=0.3, help="not before this fraction of the performance")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="pb-web-"))
    cmd = [sys.executable, "-m", "bridge.cli", "demo", "--web", "127.0.0.1:0", "--no-view", "--speed", str(a.speed),
           "--session", str(tmp / "session.jsonl"), "--plot", str(tmp / "plot.png")]  # fmt: skip
    demo = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = engraved = None
    for line in demo.stderr:
        m = re.search(r"score page on (http://\S+) \((\d+) pages engraved in ([\d.]+) s\)", line)
        if m:
            url, engraved = m.group(1), f"{m.group(2)} pages in {m.group(3)} s"
            break
    if url is None:
        sys.exit(f"web.py: the demo printed no page URL: {demo.communicate()[1][-500:]}")
    duration = 82.0 / a.speed  # the practice run's length
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        pages = [browser.new_page(viewport={"width": 1280, "height": 720}) for _ in range(a.pages)]
        t_open = time.monotonic()
        for page in pages:
            page.goto(url)
        pages[0].wait_for_function("() => __pb.firstRender !== null", timeout=30000)
        first = pages[0].evaluate("() => __pb.firstRender")
        if a.screenshot:  # once the shown page has a few marks on it, from --at on
            start = a.at * duration - (time.monotonic() - t_open)
            time.sleep(max(0.0, start))
            marked = "() => document.querySelectorAll('.page:not([hidden]) g.note[data-mark]').length"
            while pages[0].evaluate(marked) < 6 and demo.poll() is None:
                time.sleep(0.25)
            shot = tmp / "shot.png"
            pages[0].screenshot(path=str(shot))
            _small_png(shot, Path(a.screenshot))
        err = demo.communicate(timeout=duration + 120)[1]
        results = [
            page.evaluate("() => ({lags: __pb.lags, frames: __pb.frameLags, count: __pb.count})") for page in pages
        ]
        browser.close()
    print(f"pianobridge demo --web --speed {a.speed:g}, {a.pages} page(s) open:")
    print(f"  engraving (bridge, at start): {engraved}")
    print(f"  first render (navigation -> score drawn, first page): {first:.0f} ms")
    for i, r in enumerate(results):
        lags, frames = np.array(r["lags"]), np.array(r["frames"])
        print(
            f"  page {i + 1}: {r['count']} events, {len(lags)} note events live; cursor lag to DOM p50 "
            f"{np.percentile(lags, 50):.1f} ms, p99 {np.percentile(lags, 99):.1f} ms, max {lags.max():.1f} ms; "
            f"to the next frame p50 {np.percentile(frames, 50):.1f} ms, p99 {np.percentile(frames, 99):.1f} ms"
        )
    for line in err.splitlines():
        if "score page:" in line:
            print(f"  {line.removeprefix('pianobridge: ')}")
    if a.screenshot:
        print(f"  screenshot: {a.screenshot}")


def _small_png(src: Path, out: Path) -> None:
    """A screenshot in 256 colours (octree keeps the few verdict colours apart): small for the docs."""
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    img = Image.open(src).convert("RGB")
    img.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, optimize=True)


if __name__ == "__main__":
    main()
