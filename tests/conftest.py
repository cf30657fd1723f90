import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCORES = ROOT / "scores"
SHARED = ROOT.parent / "shared"
NASAP = SHARED / "data" / "nasap-dev"

# keep the score cache of a test run away from the user's, and gone when the run ends
if "PIANOBRIDGE_CACHE" not in os.environ:
    os.environ["PIANOBRIDGE_CACHE"] = tempfile.mkdtemp(prefix="pianobridge-cache-")
    atexit.register(shutil.rmtree, os.environ["PIANOBRIDGE_CACHE"], ignore_errors=True)
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def scores_dir() -> Path:
    return SCORES


def bundled(name: str) -> Path:
    return SCORES / f"{name}.musicxml"


def performance(name: str) -> Path:
    return SCORES / "performances" / f"{name}.mid"


def cli(*args, **kw) -> subprocess.CompletedProcess:
    """Run ``pianobridge ARGS`` in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *map(str, args)], capture_output=True, text=True, cwd=ROOT, **kw
    )


def _jack_running() -> bool:
    if shutil.which("jack_wait") is None:
        return False
    # jack_wait -c exits 0 either way; it says "running" or "not running"
    return subprocess.run(["jack_wait", "-c"], capture_output=True, text=True).stdout.strip() == "running"


@pytest.fixture(scope="session")
def jack():
    """A JACK dummy server for real MIDI ports (started here if none runs). Skips where
    jackd is not installed, unless PIANOBRIDGE_REQUIRE_LIVE is set (CI sets it)."""
    if shutil.which("jackd") is None:
        if os.environ.get("PIANOBRIDGE_REQUIRE_LIVE"):
            pytest.fail("jackd is not installed but live tests are required")
        pytest.skip("jackd not installed (apt-get install jackd2) - no MIDI ports on this machine")
    proc = None
    if not _jack_running():
        # synchronous (-S): the server waits for every client before the next period (up to
        # -t ms); asynchronous, a client a busy two-core machine runs late (no realtime
        # scheduling here) loses that period's MIDI while another client on the same port
        # gets it. A 256-frame period at 48 kHz (5.3 ms).
        log = tempfile.NamedTemporaryFile(prefix="jackd-", suffix=".log", delete=False)
        proc = subprocess.Popen(
            ["jackd", "--no-realtime", "-S", "-t", "2000", "-d", "dummy", "-r", "48000", "-p", "256"],
            stdout=log,
            stderr=log,
        )
        for _ in range(100):
            if proc.poll() is not None or _jack_running():
                break
            time.sleep(0.1)
        if not _jack_running():
            proc.kill()
            why = Path(log.name).read_text()[-500:]
            os.unlink(log.name)
            pytest.fail(f"jackd did not start: {why}")
    os.environ["MIDO_BACKEND"] = "mido.backends.rtmidi/UNIX_JACK"  # for the bridge we start
    import mido

    mido.set_backend("mido.backends.rtmidi/UNIX_JACK", load=True)  # for this process's ports
    yield
    if proc is not None:
        sd = sys.modules.get("sounddevice")
        if sd is not None:  # PortAudio's JACK client must close while the server is up: its
            sd._terminate()  # exit handler aborts the process (pa_jack.c assertion) once it is gone
        proc.terminate()  # it may first wait out a client that died mid-cycle (20 s + 4 s seen
        proc.wait(timeout=60)  # after test_real_audio_through_jack_into_run alone, under load)
        os.unlink(log.name)
        if sd is not None:
            sd._initialize()  # without JACK now: ALSA and OSS only


# runs a command and writes its peak resident memory (kB) to the file named first
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[2:]).returncode\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def cli_measured(*args, timeout: float = 60, **kw) -> tuple[subprocess.CompletedProcess, float]:
    """``cli`` that also gives the command's peak memory in MB; a command still running
    after ``timeout`` seconds is killed and fails the test (a hang is a defect too)."""
    import signal

    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        proc = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, rss.name, sys.executable, "-m", "bridge.cli", *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=ROOT,
            start_new_session=True, **kw,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"pianobridge {' '.join(map(str, args))} still ran after {timeout} s")
        peak_mb = int(rss.read() or 0) / 1024
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), peak_mb
