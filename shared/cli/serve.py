"""``vidluxe serve``: the API, the local runner and webhook delivery in one process.

:class:`LocalService` wires them: one SQL database for tasks, tenants, videos and the webhook outbox;
the local object store's object-created events start uploaded tasks on the runner (a pool of
``VIDLUXE_RUNNER_WORKERS`` threads, the CPU count by default); the runner's events go to the outbox,
which the delivery worker drains. Tests run the same class on a free loopback port, in a thread.

With ``--api-processes N`` (N > 1) the HTTP API runs in N child processes (one Python process
answers on one core), each a :class:`LocalService` in the API role (:class:`ApiProcess`: no runner,
no delivery; executions forwarded to this process, see :mod:`shared.service.api_processes`) listening
on the same port with SO_REUSEPORT, so the kernel spreads connections over them evenly (one shared
listening socket leaves them to whichever process accepts first: 50 connections split 50/0 to 16/34
here); this process keeps the runner and delivery and restarts a child that dies.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType, TracebackType

import structlog
import uvicorn
from fastapi import APIRouter, FastAPI

from shared.api.app import create_app
from shared.clock import Clock, SystemClock
from shared.errors import ConfigurationError
from shared.pipeline.registry import StageRegistry
from shared.service.api_processes import ExecutionRequests, ForwardedExecutions
from shared.service.runner import LocalRunner
from shared.service.services import Services
from shared.settings import Settings
from shared.settings_service import ServiceSettings
from shared.stages import ALL_STAGES
from shared.storage.factory import build_database
from web_hooks.delivery import DeliveryWorker
from web_hooks.outbox import WebhookOutbox
from web_hooks.schedule import RetryPolicy
from web_hooks.urls import validate_webhook_url

log = structlog.get_logger("vidluxe.serve")


@dataclass(frozen=True)
class ApiProcess:
    """What makes a LocalService an API process: the write end of the serving process's
    execution-request pipe, an inherited file descriptor."""

    requests_fd: int


class LocalService:
    """The whole local service, bound to ``host:port`` (port 0: a free one) on entering the context."""

    def __init__(
        self,
        settings: Settings,
        service_settings: ServiceSettings,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        clock: Clock | None = None,
        routers: Sequence[APIRouter] = (),
        deliver_webhooks: bool = True,
        log_level: str = "warning",
        access_log: bool = False,
        api_process: ApiProcess | None = None,
        reuse_port: bool = False,
    ) -> None:
        """``access_log``: a log line per request (uvicorn's; it costs CPU on every request).
        ``api_process``: serve only the API, forwarding executions. ``reuse_port``: bind with
        SO_REUSEPORT, beside the other processes of one server (API processes always do)."""
        self._settings = settings
        self._service_settings = service_settings
        self._host = host
        self._port = port
        self._clock = clock or SystemClock()
        self._routers = routers
        self._deliver_webhooks = deliver_webhooks
        self._log_level = log_level
        self._access_log = access_log
        self._api_process = api_process
        self._reuse_port = reuse_port or api_process is not None
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.services: Services | None = None
        self.runner: LocalRunner | None = None
        self.outbox: WebhookOutbox | None = None
        self.delivery: DeliveryWorker | None = None
        self.app: FastAPI | None = None
        self.base_url = ""

    def __enter__(self) -> LocalService:
        """Bind the port, open the stores, start the runner (re-queueing unfinished tasks) and delivery.

        Raises OSError if the port is taken, ConfigurationError and the stores' errors.
        """
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without
        # it a response's headers and body (two writes) wait out the client's delayed ACK (~40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._reuse_port:
            if self._api_process is None and self._port:
                _refuse_if_served(family, self._host, self._port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        port = sock.getsockname()[1]
        shown_host = f"[{self._host}]" if family == socket.AF_INET6 else self._host
        self.base_url = f"http://{shown_host}:{port}"
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def _open(self) -> None:
        database = build_database(self._settings)
        try:
            self.outbox = WebhookOutbox(database, self._clock)
        except BaseException:
            database.close()
            raise
        allow_private = self._service_settings.webhooks_allow_private
        services = Services.build(
            self._settings,
            self._service_settings,
            base_url=self.base_url,
            clock=self._clock,
            database=database,
            events=self.outbox,
            check_webhook_url=lambda url: validate_webhook_url(url, allow_private=allow_private),
        )
        self.services = services
        services.extras["webhook_outbox"] = self.outbox  # for the deliveries listing's router
        videos = services.videos
        if services.local_objects is not None:
            services.local_objects.add_listener(videos.upload_landed)
        if self._api_process is not None:
            videos.executions = ForwardedExecutions(self._api_process.requests_fd)
            self.app = create_app(services, routers=self._routers)
            return
        self.runner = LocalRunner(
            services.runtime,
            StageRegistry(ALL_STAGES),
            workers=self._service_settings.runner_workers,
            on_started=videos.task_started,
            on_finished=videos.task_finished,
        )
        videos.executions = self.runner
        services.runtime.on_progress = videos.stage_progress
        recovered = self.runner.recover()
        if recovered:
            log.info("unfinished tasks queued again", count=len(recovered))
        if self._deliver_webhooks:
            scale = self._service_settings.webhooks_retry_scale
            if scale != 1:
                log.warning("webhook retry schedule scaled (a development setting)", webhooks_retry_scale=scale)
            self.delivery = DeliveryWorker(
                self.outbox,
                services.tenants,
                self._clock,
                allow_private=allow_private,
                policy=RetryPolicy().scaled(scale),
            )
            self.delivery.start()
        self.app = create_app(services, routers=self._routers)

    def _uvicorn(self) -> uvicorn.Server:
        if self.app is None:
            raise RuntimeError("Enter the LocalService context first.")
        # uvicorn picks uvloop and httptools (uvicorn[standard]) when they are installed.
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            access_log=self._access_log,
            lifespan="off",
            timeout_graceful_shutdown=5,
            # Nothing reads the client's address: X-Forwarded-For need not be parsed on every request.
            proxy_headers=False,
        )
        self._server = uvicorn.Server(config)
        return self._server

    @property
    def socket(self) -> socket.socket | None:
        """The listening socket, once entered."""
        return self._socket

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C, SIGTERM)."""
        if self._socket is None:
            raise RuntimeError("Enter the LocalService context first.")
        self._uvicorn().run(sockets=[self._socket])

    def start_in_thread(self, timeout: float = 10.0) -> None:
        """Serve from a background thread; returns once the server accepts connections."""
        if self._socket is None:
            raise RuntimeError("Enter the LocalService context first.")
        server = self._uvicorn()
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name="vidluxe-serve", daemon=True
        )
        self._thread.start()
        ready = threading.Event()
        for _ in range(int(timeout * 100)):
            if server.started:
                ready.set()
                break
            ready.wait(0.01)
        if not ready.is_set():
            raise RuntimeError(f"The server did not start within {timeout} s.")

    def close(self) -> None:
        """Stop serving, interrupt running executions at their next state (they resume on the next
        start), stop delivery, close the stores."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        if self.runner is not None:
            self.runner.shutdown(wait=True)
            self.runner = None
        if self.delivery is not None:
            self.delivery.stop()  # closes it too
            self.delivery = None
        if self.services is not None:
            self.services.close()
            self.services = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    access_log: bool = False,
    api_processes: int = 1,
    api_process: ApiProcess | None = None,
) -> None:
    """``vidluxe serve``: run until interrupted. Raises ConfigurationError (ADDRESS_IN_USE) when the
    address cannot be bound. ``api_processes`` > 1: the API in that many child processes (above);
    ``api_process``: be one of them (the serving process starts them so)."""
    service_settings = ServiceSettings()
    service = LocalService(
        settings, service_settings, host=host, port=port, log_level="info", access_log=access_log,
        api_process=api_process, reuse_port=api_processes > 1,
    )
    try:
        service.__enter__()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot listen on {host}:{port} ({exc.strerror}); choose another with --port.", code="ADDRESS_IN_USE"
        ) from exc
    try:  # entered above, once: a second __enter__ (a `with` here) would open every store again
        # What is built by now lives as long as the process: freezing it keeps it out of the cyclic
        # collector, whose full passes over it (tens of ms with the stages' libraries loaded) would
        # otherwise stall every request in flight.
        gc.collect()
        gc.freeze()
        if api_process is not None:
            _exit_with_parent()
            service.serve_forever()
        elif api_processes > 1:
            _supervise_api_processes(service, api_processes, host=host, access_log=access_log)
        else:
            print(f"VidLuxe API on {service.base_url} (docs: {service.base_url}/docs); Ctrl-C stops", flush=True)
            service.serve_forever()
    finally:
        service.close()


def _refuse_if_served(family: socket.AddressFamily, host: str, port: int) -> None:
    """Raises OSError (EADDRINUSE) when something answers on ``host:port``: with SO_REUSEPORT a second
    server would otherwise bind beside it and share its connections."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        if probe.connect_ex((host, port)) == 0:
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))


def _exit_with_parent() -> None:
    """An API process stops (SIGTERM to itself: uvicorn's graceful stop) once its serving process is
    gone, however that one ended."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="vidluxe-parent-watch", daemon=True).start()


_RESTART_DELAY_SECONDS = 1.0
_STOP_TIMEOUT_SECONDS = 10.0


def _supervise_api_processes(service: LocalService, count: int, *, host: str, access_log: bool) -> None:
    """Run ``count`` API processes on the service's port until SIGINT or SIGTERM; restart one that
    exits. This process keeps the runner (fed by their execution requests) and webhook delivery, and
    its socket, bound but not listening, keeps the port for them."""
    sock, runner, services = service.socket, service.runner, service.services
    if sock is None or runner is None or services is None:
        raise RuntimeError("Enter the LocalService context first.")
    port = sock.getsockname()[1]
    read_fd, write_fd = os.pipe()
    requests = ExecutionRequests(read_fd, runner, services.runtime.tasks)
    requests.start()
    role = ApiProcess(write_fd)
    command = [sys.executable, "-m", "shared.cli", "serve", "--host", host, "--port", str(port),
               "--api-process", str(role.requests_fd)]
    if access_log:
        command.append("--access-log")
    # A flag, not a threading.Event: the handler runs on the main thread between bytecodes, possibly
    # inside Event.wait holding the Event's lock, and Event.set would wait for that lock forever.
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, pass_fds=(role.requests_fd,))

    children = [spawn() for _ in range(count)]
    print(
        f"VidLuxe API on {service.base_url} (docs: {service.base_url}/docs), {count} API processes; Ctrl-C stops",
        flush=True,
    )
    try:
        while not stopping:
            time.sleep(_RESTART_DELAY_SECONDS)  # the handler runs meanwhile; the flag is read each second
            for index, child in enumerate(children):
                if child.poll() is not None and not stopping:
                    log.error("API process exited; starting another", pid=child.pid, returncode=child.returncode)
                    children[index] = spawn()
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + _STOP_TIMEOUT_SECONDS
        for child in children:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        os.close(write_fd)  # the children's copies are closed: the request reader sees the end
        requests.join(timeout=5)
        for number, handler in previous.items():
            signal.signal(number, handler)
