"""Speed and memory of `vidluxe enhance` against the floor: a bare ffmpeg transcode of the same clip.

Makes a 30-second 1080x1920 talking-head clip from ../shared/testdata (the vertical talking clip looped,
with music for audio), then in one run times:
  floor     ffmpeg decode + libx264 veryfast CRF 20 + AAC of that clip (the same encoder settings the
            pipeline delivers with);
  pipeline  `vidluxe enhance` on it, in a fresh data home (nothing cached), with a title and quotes.
Prints wall times, the ratio pipeline/floor, the real-time factor (wall / clip length), the peak memory
of the pipeline's whole process tree (sampled every 50 ms from /proc), and the per-stage breakdown.
Targets (issue 3): ratio <= 1.5, real-time factor <= 1.0, peak memory <= 1.5 GB.

    python benchmarks/enhance_bench.py [--seconds 30] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from proc_stats import process_rss_bytes, process_tree

from shared.media.ffmpeg import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
ENCODER = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]


def make_clip(seconds: float, out: Path) -> None:
    """The vertical talking clip looped to ``seconds``, at 1080x1920 30 fps, with a music track."""
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-stream_loop", "-1",
         "-i", str(TESTDATA / "videos" / "liveportrait_d13_vertical_talking.mp4"),
         "-i", str(TESTDATA / "audio" / "Kevin_MacLeod_-_Vibe_Ace.ogg"), "-t", f"{seconds}",
         "-map", "0:v", "-map", "1:a", "-vf", "scale=1080:1920,fps=30", "-c:v", "libx264", "-preset", "fast",
         "-crf", "17", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "160k", str(out)],
        check=True,
    )


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run ``command``; return (wall seconds, CPU seconds of it and its descendants, peak RSS in bytes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = 0
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(process_rss_bytes(child) for child in process_tree(process.pid)))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{stderr.decode(errors='replace')[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--keep", type=Path, help="keep the clip and outputs here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="vidluxe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip_1080x1920.mp4"
    if not clip.exists():
        make_clip(args.seconds, clip)

    env = {**os.environ, "VIDLUXE_HOME": str(work / "home")}
    floor_wall, floor_cpu, floor_peak = run_measured(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(clip), *ENCODER, "-c:a", "aac", "-b:a", "128k",
         str(work / "floor.mp4")], env)
    pipeline_wall, pipeline_cpu, pipeline_peak = run_measured(
        [sys.executable, "-m", "shared.cli", "enhance", str(clip), "--preset", "luxury",
         "--title", "Three habits of calm creators", "--subtitle", "Episode 12",
         "--quote", "Slow is smooth, smooth is fast", "--quote", "Make it once, make it well",
         "--out", str(work / "out")], env)

    report = json.loads((work / "out" / "report.json").read_text())
    print(f"clip: {clip} ({args.seconds:g} s, 1080x1920, 30 fps)")
    print(f"floor (bare ffmpeg transcode):  {floor_wall:7.2f} s wall {floor_cpu:7.2f} s cpu   "
          f"peak {floor_peak / 2**20:6.0f} MiB")
    print(f"vidluxe enhance:               {pipeline_wall:7.2f} s wall {pipeline_cpu:7.2f} s cpu   "
          f"peak {pipeline_peak / 2**20:6.0f} MiB")
    print(f"cpu ratio to floor:    {pipeline_cpu / floor_cpu:5.2f}   (what the wall ratio tends to on an idle machine)")
    print(f"ratio to floor:        {pipeline_wall / floor_wall:5.2f}   (target <= 1.5)")
    print(f"real-time factor:      {pipeline_wall / args.seconds:5.2f}   (target <= 1.0)")
    print(f"peak memory:           {pipeline_peak / 2**30:5.2f} GiB (target <= 1.5)")
    print("stages (wall s, cpu s):")
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for stage in report["stages"]:
        entry = totals[stage["stage"]]
        entry[0] += 1
        entry[1] += stage["duration_seconds"]
        entry[2] += stage["cpu_seconds"]
    for name, (runs, wall, cpu) in totals.items():
        print(f"  {name:<17} x{int(runs):<3} {wall:7.2f} {cpu:7.2f}")


if __name__ == "__main__":
    main()
