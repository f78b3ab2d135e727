"""``vidluxe``: enhance a video, inspect and resume tasks, run any ASL document locally.

Every command exits 0 on success and non-zero with one ``error CODE: message`` line on failure; with
``--json`` the result is printed as JSON on stdout instead of text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from shared.asl import AslDefinitionError, StateMachine, run_execution
from shared.cli.progress import StageProgress
from shared.errors import InvalidInputError, VidluxeError
from shared.logging import configure_logging
from shared.media.render import GRADES
from shared.pipeline.enhance import EnhanceOptions, OutputFormat, submit_enhance
from shared.pipeline.execution import new_task_id, run_task
from shared.pipeline.registry import StageRegistry
from shared.pipeline.report import build_report, deliver
from shared.pipeline.runtime import Runtime
from shared.pipeline.showcase import ShowcaseOptions, submit_showcase
from shared.settings import Settings
from shared.stages import ALL_STAGES
from shared.stages.showcase_scene import CATEGORIES
from shared.stages.style import PRESETS
from shared.storage.tasks import TaskRecord, TaskStatus

EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, "DEBUG" if args.verbose else "WARNING")
    console = Console(stderr=True)
    try:
        handler: Callable[[argparse.Namespace, Settings, Console], int] = args.handler
        return handler(args, settings, console)
    except VidluxeError as exc:
        return _fail(args, exc.code, exc.message)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return _fail(args, "INVALID_OPTION", f"{where}: {first['msg']}")
    except KeyboardInterrupt:
        return _fail(args, "INTERRUPTED", "Interrupted; `vidluxe resume TASK_ID` continues where it stopped.")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidluxe", description="Turn a raw video into a premium one.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every stage event to stderr")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    enhance = commands.add_parser("enhance", help="enhance a talking-head video")
    enhance.add_argument("video", type=Path)
    enhance.add_argument("--reference", type=Path, help="an image whose style to learn")
    enhance.add_argument("--preset", choices=sorted(PRESETS),
                         help="a style preset (default: a style learned from the video's own frames)")
    enhance.add_argument("--title")
    enhance.add_argument("--subtitle")
    enhance.add_argument("--quote", action="append", default=[], dest="quotes", help="repeatable")
    enhance.add_argument("--width", type=int, default=OutputFormat().width)
    enhance.add_argument("--height", type=int, default=OutputFormat().height)
    enhance.add_argument("--fps", type=int, default=OutputFormat().fps)
    enhance.add_argument("--grade", choices=sorted(GRADES), help="color grade (default: the style's)")
    enhance.add_argument("--grade-intensity", type=float, default=EnhanceOptions().grade_intensity)
    enhance.add_argument("--square", action="store_true", help="also write a 1080x1080 version")
    enhance.add_argument("--gif", action="store_true", help="also write a GIF preview")
    enhance.add_argument("--out", type=Path, default=Path("vidluxe-out"), help="output directory")
    enhance.add_argument("--json", action="store_true")
    enhance.set_defaults(handler=_enhance)

    showcase = commands.add_parser("showcase", help="animate product photos into a short product video")
    showcase.add_argument("photos", type=Path, nargs="+", metavar="PHOTO")
    showcase.add_argument("--category", choices=CATEGORIES, required=True, help="picks the scene")
    showcase.add_argument("--title")
    showcase.add_argument("--subtitle")
    showcase.add_argument("--width", type=int, default=OutputFormat().width)
    showcase.add_argument("--height", type=int, default=OutputFormat().height)
    showcase.add_argument("--fps", type=int, default=OutputFormat().fps)
    showcase.add_argument("--out", type=Path, default=Path("vidluxe-out"), help="output directory")
    showcase.add_argument("--json", action="store_true")
    showcase.set_defaults(handler=_showcase)

    status = commands.add_parser("status", help="show one task")
    status.add_argument("task_id")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)

    tasks = commands.add_parser("tasks", help="list recent tasks")
    tasks.add_argument("--status", choices=[s.value for s in TaskStatus])
    tasks.add_argument("--limit", type=int, default=20)
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(handler=_tasks)

    resume = commands.add_parser("resume", help="continue a crashed or failed task from its last state")
    resume.add_argument("task_id")
    resume.add_argument("--out", type=Path, help="output directory (default: the task's own)")
    resume.add_argument("--json", action="store_true")
    resume.set_defaults(handler=_resume)

    matte = commands.add_parser("matte", help="cut the person out: an alpha PNG, or a matte per video frame")
    matte.add_argument("input", type=Path, help="an image or a video")
    matte.add_argument("--out", type=Path, required=True, help="the PNG (image), or the folder or mp4 (video)")
    matte.add_argument("--format", choices=["png", "mp4"], help="a video's matte: PNG folder (default) or mp4")
    matte.add_argument("--keyframe-interval", type=int, default=5, help="run the model every N frames (video)")
    matte.add_argument("--json", action="store_true")
    matte.set_defaults(handler=_matte)

    serve = commands.add_parser("serve", help="run the HTTP API, the local runner and webhook delivery")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--access-log", action="store_true", help="log every request (costs CPU per request)")
    serve.add_argument(
        "--api-processes", type=int, default=1, metavar="N",
        help="answer HTTP in N processes (one core each); this one keeps the runner and webhook delivery",
    )
    serve.add_argument("--api-process", type=int, help=argparse.SUPPRESS)  # the pipe's fd, from the serving process
    serve.set_defaults(handler=_serve, json=False)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(required=True, metavar="ACTION")
    keys_create = keys.add_parser("create", help="create an API key (and the tenant, if new); printed once")
    keys_create.add_argument("--tenant", required=True, help="the tenant's name")
    keys_create.add_argument("--json", action="store_true")
    keys_create.set_defaults(handler=_keys_create)

    sfn = commands.add_parser("sfn", help="Step Functions tools").add_subparsers(required=True, metavar="ACTION")
    sfn_run = sfn.add_parser("run", help="run an ASL document on the embedded engine, print its output")
    sfn_run.add_argument("definition", type=Path)
    sfn_run.add_argument("--input", default="{}", help="the execution input, as JSON")
    sfn_run.add_argument("--json", action="store_true", default=True, help=argparse.SUPPRESS)
    sfn_run.set_defaults(handler=_sfn_run)
    return parser


def _enhance(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    options = EnhanceOptions(
        preset=args.preset, title=args.title, subtitle=args.subtitle, quotes=args.quotes,
        output=_output_format(args.width, args.height, args.fps), grade=args.grade,
        grade_intensity=args.grade_intensity, square=args.square, gif=args.gif,
    )
    out_dir = args.out.resolve()
    with Runtime.from_settings(settings) as runtime:
        task = submit_enhance(
            runtime, new_task_id(), args.video, options, reference=args.reference,
            delivery={"out_dir": str(out_dir)},
        )
        if task.status != TaskStatus.FAILED:
            console.print(f"task {task.task_id}")
            task = _run(runtime, task.task_id, console)
        return _finish(args, runtime, task, out_dir, console)


def _showcase(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    options = ShowcaseOptions(category=args.category, title=args.title, subtitle=args.subtitle,
                              output=_output_format(args.width, args.height, args.fps))
    out_dir = args.out.resolve()
    with Runtime.from_settings(settings) as runtime:
        task = submit_showcase(runtime, new_task_id(), args.photos, options, delivery={"out_dir": str(out_dir)})
        if task.status != TaskStatus.FAILED:
            console.print(f"task {task.task_id}")
            task = _run(runtime, task.task_id, console)
        return _finish(args, runtime, task, out_dir, console)


def _resume(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    with Runtime.from_settings(settings) as runtime:
        task = runtime.tasks.get_task(args.task_id)
        out_dir = args.out.resolve() if args.out else Path(task.input.get("delivery", {}).get("out_dir", "."))
        task = _run(runtime, task.task_id, console)
        return _finish(args, runtime, task, out_dir, console)


def _status(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    with Runtime.from_settings(settings) as runtime:
        report = build_report(runtime, runtime.tasks.get_task(args.task_id))
    if args.json:
        _print_json(report)
    else:
        console.print(f"{report['task_id']}  {report['status']}  stage={report['current_stage'] or '-'}")
        if report["error"]:
            console.print(f"  error {report['error']['code']}: {report['error']['message']}")
        for stage in report["stages"]:
            console.print(f"  {stage['stage']:<16} {stage['status']:<9} {stage['duration_seconds']:>8.2f}s")
        if "cost" in report:
            cost = report["cost"]
            console.print(f"  cost ${cost['total_usd']:.6f} (prices {', '.join(cost['price_versions']) or '-'})")
    return 0


def _tasks(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    with Runtime.from_settings(settings) as runtime:
        status = TaskStatus(args.status) if args.status else None
        tasks = runtime.tasks.list_tasks(limit=args.limit, status=status)
    if args.json:
        _print_json([t.model_dump(mode="json", include={"task_id", "pipeline", "status", "current_stage",
                                                         "error_code", "created_at", "updated_at"})
                     for t in tasks])
    else:
        for task in tasks:
            console.print(f"{task.task_id}  {task.pipeline:<8} {task.status.value:<9} "
                          f"{task.created_at:%Y-%m-%d %H:%M:%S}  {task.error_code or ''}")
    return 0


def _sfn_run(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    try:
        document = json.loads(args.definition.read_text())
        execution_input = json.loads(args.input)
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {args.definition}: {exc.strerror}.", code="INPUT_NOT_FOUND") from None
    except ValueError as exc:
        raise InvalidInputError(f"Not valid JSON: {exc}.", code="INVALID_JSON") from None
    try:
        machine = StateMachine.load(document)
    except AslDefinitionError as exc:
        raise InvalidInputError(str(exc), code="INVALID_DEFINITION") from None
    registry = StageRegistry(ALL_STAGES)
    runtime = Runtime.from_settings(settings) if machine.task_resources() else None
    try:
        if runtime is not None:
            registry.validate(machine)
        name = new_task_id()
        result = run_execution(
            machine, execution_input, execution_id=f"arn:aws:states:local:000000000000:execution:sfn:{name}",
            execution_name=name, invoke_task=registry.invoker(runtime) if runtime else None,
            max_workers=settings.max_workers,
        )
    finally:
        if runtime is not None:
            runtime.close()
    if result.status == "SUCCEEDED":
        _print_json(result.output)
        return 0
    _print_json({"error": result.error, "cause": result.cause})
    return EXIT_FAILED


def _serve(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from shared.cli.serve import ApiProcess, serve

    configure_logging(settings.log_format, settings.log_level)
    if args.api_processes < 1:
        raise InvalidInputError("--api-processes must be at least 1.", code="INVALID_OPTION")
    api_process = ApiProcess(args.api_process) if args.api_process is not None else None
    serve(
        settings, host=args.host, port=args.port, access_log=args.access_log,
        api_processes=args.api_processes, api_process=api_process,
    )
    return 0


def _keys_create(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    """The key and the webhook signing secret are printed once; only the key's hash is kept."""
    from shared.clock import SystemClock
    from shared.storage.factory import build_database
    from shared.storage.tenants import TenantStore

    with build_database(settings) as database:
        issued = TenantStore(database, SystemClock()).issue_key(args.tenant)
    if args.json:
        _print_json(
            {
                "tenant_id": issued.tenant.tenant_id,
                "tenant": issued.tenant.name,
                "api_key": issued.api_key,
                "key_prefix": issued.key_prefix,
                "webhook_secret": issued.signing_secret,
            }
        )
    else:
        print(f"tenant          {issued.tenant.name} ({issued.tenant.tenant_id})")
        print(f"api key         {issued.api_key}")
        print(f"webhook secret  {issued.signing_secret}")
        console.print(f"Keep the key now: only its hash is stored (shown later as {issued.key_prefix}...).")
    return 0


def _matte(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    """``vidluxe matte``: no task, no data home; the matte is written straight to ``--out``."""
    from rich.progress import Progress

    from shared.media.matting import matte_file

    with Progress(console=console, transient=True, disable=args.json or not console.is_terminal) as bar:
        step = bar.add_task(f"matting {args.input.name}", total=1.0)
        result = matte_file(
            args.input, args.out, video_output=args.format, keyframe_interval=args.keyframe_interval,
            progress=lambda fraction: bar.update(step, completed=fraction),
        )
    summary = {**vars(result), "path": str(result.path)}
    if args.json:
        _print_json(summary)
    else:
        frames = f", {result.frames} frames" if result.kind == "video" else ""
        console.print(f"{result.kind} matte {result.width}x{result.height}{frames}: {result.path}")
    return 0


def _run(runtime: Runtime, task_id: str, console: Console) -> TaskRecord:
    with StageProgress(console) as progress:
        runtime.on_progress = progress
        return run_task(runtime, StageRegistry(ALL_STAGES), task_id)


def _finish(args: argparse.Namespace, runtime: Runtime, task: TaskRecord, out_dir: Path, console: Console) -> int:
    if task.status != TaskStatus.SUCCEEDED:
        if args.json:
            _print_json(build_report(runtime, task))
        return _fail(args, task.error_code or "FAILED", f"{task.error_message} (task {task.task_id})")
    files = deliver(runtime, task, out_dir)
    if args.json:
        _print_json(json.loads(files["report.json"].read_text()))
    else:
        for name, path in files.items():
            console.print(f"{name:<15} {path}")
    return 0


def _output_format(width: int, height: int, fps: int) -> OutputFormat:
    try:
        return OutputFormat(width=width, height=height, fps=fps)
    except ValueError as exc:
        raise InvalidInputError(f"Invalid output format: {exc}", code="INVALID_OPTION") from None


def _fail(args: argparse.Namespace, code: str, message: str) -> int:
    print(f"error {code}: {message}", file=sys.stderr)
    return EXIT_FAILED


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))
