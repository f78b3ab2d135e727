"""Running the ffmpeg binary: never through a shell, bounded stderr, timeouts, cancellation, CPU accounting.

The binary is imageio-ffmpeg's static build (there is no ffprobe and no system ffmpeg); the environment
variable ``VIDLUXE_FFMPEG`` overrides it with a path or a name on ``PATH``.

CPU time is measured for the one child only, from the rusage ``os.wait4`` returns when it is reaped, so
stages that run ffmpeg concurrently on threads each get their own child's seconds (process-wide
``getrusage(RUSAGE_CHILDREN)`` would hand one stage the CPU of another's child).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO

from shared.errors import ConfigurationError, MediaError
from shared.storage.tasks import ResourceUsage

ENV_OVERRIDE = "VIDLUXE_FFMPEG"
BASE_ARGS = ("-nostdin", "-hide_banner", "-loglevel", "error")

_STDERR_LINES = 200  # lines kept from ffmpeg's stderr
_STDERR_LINE_CHARS = 1000  # characters kept from one line
_ERROR_TAIL_LINES = 12  # lines quoted in an error message
_POLL_SECONDS = 0.05


def ffmpeg_exe() -> str:
    """The ffmpeg binary to run: ``$VIDLUXE_FFMPEG`` when set, else imageio-ffmpeg's bundled one.

    Raises ConfigurationError (code FFMPEG_NOT_FOUND) when the override names nothing executable or
    imageio-ffmpeg has no binary for this platform.
    """
    override = os.environ.get(ENV_OVERRIDE, "").strip()
    if override:
        found = shutil.which(override)
        if found is None:
            raise ConfigurationError(
                f"{ENV_OVERRIDE}={override!r} is not an executable file or a command on PATH.",
                code="FFMPEG_NOT_FOUND",
            )
        return found
    try:
        import imageio_ffmpeg

        exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise ConfigurationError(
            f"No ffmpeg binary: install imageio-ffmpeg or set {ENV_OVERRIDE} ({exc}).",
            code="FFMPEG_NOT_FOUND",
        ) from exc
    return exe


def run_ffmpeg(
    args: list[str],
    *,
    usage: ResourceUsage | None = None,
    timeout: float | None = None,
    cancelled: threading.Event | None = None,
    progress: Callable[[float], None] | None = None,
    duration_seconds: float | None = None,
    feed: Callable[[IO[bytes]], None] | None = None,
) -> None:
    """Run ``ffmpeg -nostdin -hide_banner -loglevel error *args`` and wait for it.

    With ``feed``, ffmpeg's stdin is a pipe (for an input ``-i pipe:0``) and ``feed(stdin)`` writes it
    from a thread; the pipe is closed when ``feed`` returns. If ``feed`` raises, ffmpeg is stopped and
    that error is raised (it is the cause; ffmpeg would only see its input end early), unless it is the
    broken pipe of an ffmpeg that exited first.

    With ``progress`` and ``duration_seconds``, ffmpeg reports its position (``-progress pipe:1``) and
    ``progress`` is called with the fraction of ``duration_seconds`` written so far.

    ``args`` are passed to the binary as they are (no shell, so no quoting is needed or wanted). The
    child's user+system CPU seconds are added to ``usage.cpu_seconds``, also when it fails or is killed.
    The process is killed when ``timeout`` seconds pass or ``cancelled`` is set (checked every 50 ms).

    Raises MediaError with code FFMPEG_FAILED (non-zero exit; the message quotes the last stderr lines),
    FFMPEG_TIMEOUT or FFMPEG_CANCELLED (the process was killed; any output it left is incomplete), and
    ConfigurationError (code FFMPEG_NOT_FOUND) when there is no binary to run.
    """
    report = progress is not None and duration_seconds is not None and duration_seconds > 0
    base = BASE_ARGS if feed is None else tuple(arg for arg in BASE_ARGS if arg != "-nostdin")
    command = [ffmpeg_exe(), *base, *(["-progress", "pipe:1", "-nostats"] if report else []), *args]
    if cancelled is not None and cancelled.is_set():
        raise MediaError("Cancelled before ffmpeg started.", code="FFMPEG_CANCELLED")
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL if feed is None else subprocess.PIPE,
            stdout=subprocess.PIPE if report else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        raise MediaError(f"Could not start ffmpeg ({command[0]}): {exc}", code="FFMPEG_FAILED") from exc

    stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
    assert process.stderr is not None
    reader = threading.Thread(target=_drain, args=(process.stderr, stderr_tail), daemon=True)
    reader.start()
    watcher: threading.Thread | None = None
    if report and process.stdout is not None and progress is not None and duration_seconds is not None:
        watcher = threading.Thread(
            target=_follow_progress, args=(process.stdout, progress, duration_seconds), daemon=True
        )
        watcher.start()
    feeder = None if feed is None else _Feeder(feed, process)

    killed_because: str | None = None
    try:
        status, cpu_seconds = _wait(process, timeout, cancelled, feeder)
    except BaseException:  # KeyboardInterrupt, or anything unexpected: never leave ffmpeg running
        _kill(process)
        _reap(process)
        raise
    if status is None:
        if feeder is not None and feeder.error is not None:
            killed_because = "feed"
        else:
            killed_because = "cancelled" if cancelled is not None and cancelled.is_set() else "timeout"
        _kill(process)
        status, cpu_seconds = _reap(process)
    reader.join(timeout=5)
    process.stderr.close()
    if watcher is not None and process.stdout is not None:
        watcher.join(timeout=5)
        process.stdout.close()
    if usage is not None:
        usage.cpu_seconds += cpu_seconds
    if feeder is not None:
        feeder.join()
        if feeder.error is not None and not isinstance(feeder.error, BrokenPipeError):
            raise feeder.error

    exit_code = os.waitstatus_to_exitcode(status)
    if killed_because == "cancelled":
        raise MediaError("ffmpeg was stopped: the task was cancelled.", code="FFMPEG_CANCELLED")
    if killed_because == "timeout":
        raise MediaError(
            f"ffmpeg did not finish within {timeout:g} s and was stopped.", code="FFMPEG_TIMEOUT"
        )
    if exit_code != 0:
        tail = [line for line in stderr_tail if line.strip()][-_ERROR_TAIL_LINES:]
        detail = "\n".join(tail) if tail else "(no error output)"
        raise MediaError(
            f"ffmpeg failed with exit status {exit_code}:\n{detail}",
            code="FFMPEG_FAILED",
            details={"exit_status": exit_code},
        )


def _drain(stream: IO[bytes], tail: deque[str]) -> None:
    """Read ffmpeg's stderr to the end (so the pipe never fills), keeping the last lines, each bounded."""
    for raw in iter(stream.readline, b""):
        tail.append(raw[:_STDERR_LINE_CHARS].decode("utf-8", "replace").rstrip())


def _follow_progress(stream: IO[bytes], progress: Callable[[float], None], duration_seconds: float) -> None:
    """Turn ffmpeg's ``out_time_us=`` progress lines into fractions of the expected duration."""
    for raw in iter(stream.readline, b""):
        key, _, value = raw.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us" and value.isdigit():
            progress(min(1.0, int(value) / 1e6 / duration_seconds))


class _Feeder:
    """Runs ``feed(stdin)`` on a thread, closes the pipe after it, and keeps what it raised."""

    def __init__(self, feed: Callable[[IO[bytes]], None], process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None
        self._stdin = process.stdin
        self._feed = feed
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ffmpeg-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._feed(self._stdin)
        except BaseException as exc:  # handed to run_ffmpeg's thread
            self.error = exc
        finally:
            with contextlib.suppress(OSError):  # broken pipe: ffmpeg has gone
                self._stdin.close()

    def join(self) -> None:
        self._thread.join()


def _wait(
    process: subprocess.Popen[bytes],
    timeout: float | None,
    cancelled: threading.Event | None,
    feeder: _Feeder | None = None,
) -> tuple[int | None, float]:
    """Poll until the child exits (returns its wait status and CPU seconds) or must be stopped (None):
    on timeout, cancellation, or a feed that failed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            _mark_reaped(process, status)
            return status, rusage.ru_utime + rusage.ru_stime
        if feeder is not None and feeder.error is not None and not isinstance(feeder.error, BrokenPipeError):
            return None, 0.0
        if cancelled is not None and cancelled.is_set():
            return None, 0.0
        if deadline is not None and time.monotonic() >= deadline:
            return None, 0.0
        if cancelled is not None:
            cancelled.wait(_POLL_SECONDS)
        else:
            time.sleep(_POLL_SECONDS)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)


def wait_for_exit(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait for a child (reaping it with ``os.wait4``); return its exit code and user+system CPU seconds.

    A child already reaped returns its exit code and 0.0. Callers that may wait from two threads must
    serialise the calls.
    """
    if process.returncode is not None:
        return process.returncode, 0.0
    _, status, rusage = os.wait4(process.pid, 0)
    _mark_reaped(process, status)
    return os.waitstatus_to_exitcode(status), rusage.ru_utime + rusage.ru_stime


def _reap(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait for a child that is exiting, returning its wait status and CPU seconds."""
    if process.returncode is not None:
        return 0, 0.0
    _, status, rusage = os.wait4(process.pid, 0)
    _mark_reaped(process, status)
    return status, rusage.ru_utime + rusage.ru_stime


def _mark_reaped(process: subprocess.Popen[bytes], status: int) -> None:
    """Tell Popen the child was reaped here, so it never waits for (or signals) a recycled pid."""
    process.returncode = os.waitstatus_to_exitcode(status)
