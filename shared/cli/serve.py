"""``vidluxe serve``: the API, the local runner and webhook delivery in one process.

:class:`LocalService` wires them: one SQL database for tasks, tenants, videos and the webhook outbox;
the local object store's object-created events start uploaded tasks on the runner (a pool of
``VIDLUXE_RUNNER_WORKERS`` threads, the CPU count by default); the runner's events go to the outbox,
which the delivery worker drains. Tests run the same class on a free loopback port, in a thread.
"""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Sequence
from types import TracebackType

import structlog
import uvicorn
from fastapi import APIRouter, FastAPI

from shared.api.app import create_app
from shared.clock import Clock, SystemClock
from shared.errors import ConfigurationError
from shared.pipeline.registry import StageRegistry
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
    ) -> None:
        """``access_log``: a log line per request (uvicorn's; it costs CPU on every request)."""
        self._settings = settings
        self._service_settings = service_settings
        self._host = host
        self._port = port
        self._clock = clock or SystemClock()
        self._routers = routers
        self._deliver_webhooks = deliver_webhooks
        self._log_level = log_level
        self._access_log = access_log
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
        self.runner = LocalRunner(
            services.runtime,
            StageRegistry(ALL_STAGES),
            workers=self._service_settings.runner_workers,
            on_started=videos.task_started,
            on_finished=videos.task_finished,
        )
        videos.executions = self.runner
        services.runtime.on_progress = videos.stage_progress
        if services.local_objects is not None:
            services.local_objects.add_listener(videos.upload_landed)
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
        )
        self._server = uvicorn.Server(config)
        return self._server

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


def serve(settings: Settings, *, host: str, port: int, access_log: bool = False) -> None:
    """``vidluxe serve``: run until interrupted. Raises ConfigurationError (ADDRESS_IN_USE) when the
    address cannot be bound."""
    service_settings = ServiceSettings()
    service = LocalService(settings, service_settings, host=host, port=port, log_level="info", access_log=access_log)
    try:
        service.__enter__()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot listen on {host}:{port} ({exc.strerror}); choose another with --port.", code="ADDRESS_IN_USE"
        ) from exc
    with service:
        print(f"VidLuxe API on {service.base_url} (docs: {service.base_url}/docs); Ctrl-C stops", flush=True)
        # What is built by now lives as long as the process: freezing it keeps it out of the cyclic
        # collector, whose full passes over it (tens of ms with the stages' libraries loaded) would
        # otherwise stall every request in flight.
        gc.collect()
        gc.freeze()
        service.serve_forever()
