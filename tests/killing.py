"""Kill a running `atelier script` at a known point, for crash-and-resume tests."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def kill_after_first_turn(process: subprocess.Popen, manifest: Path, timeout: float) -> None:
    """SIGKILL the process as soon as the first turn is in the manifest (the next turn is then
    running), and check it died of the kill rather than finishing or failing first."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if manifest.is_file() and manifest.read_text().count("\n") >= 1:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
