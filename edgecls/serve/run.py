"""Running the service: uvicorn on a socket bound here (so the address is known and announced before
the first request), reloads on SIGHUP and, with ``watch``, when a model file is replaced on disk."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgecls.runtime.errors import BackendUnavailableError, EdgeclsError, ServiceError
from edgecls.runtime.monitor import MonitorOptions
from edgecls.runtime.trust import Trust
from edgecls.serve.app import ServeOptions, Service, create_app
from edgecls.serve.models import ModelSet, parse_model_args

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["ServerOptions", "listen", "run_server"]

logger = logging.getLogger("edgecls.serve")
WATCH_INTERVAL_S = 1.0


@dataclass(frozen=True)
class ServerOptions:
    """How ``edgecls serve`` runs: where it listens, the pools (``workers`` classifiers per model, each on
    ``threads`` engine threads: None is 1 for a file, the deploy.json's for a folder) on ``backend`` and
    ``device``, ``watch`` (reload a model file when it is replaced), and ``service``: how the app answers
    (:class:`~edgecls.serve.app.ServeOptions`, the one set of answering options)."""

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    threads: int | None = None
    backend: str = "auto"
    device: str = "cpu"
    watch: bool = False
    service: ServeOptions = field(default_factory=ServeOptions)
    trust: Trust | None = None
    """Keys every model file (and reload) must be signed by, versions it may not go below (None:
    ``EDGECLS_TRUSTED_KEYS``, else unchecked)."""
    monitor: MonitorOptions | None = None
    """Watch each model for drift against its reference profile (``edgecls_drift_*`` on /metrics); None: off."""


def _stamp(path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port) whose connections send at once.

    Raises:
        OSError: the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so; with proto 0 each answer's
    # body waited for the client's delayed ACK of its head (42 ms per request on a keep-alive connection)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def run_server(model_args: Sequence[str], options: ServerOptions, announce: Callable[[str], None]) -> None:
    """Load the models, bind, announce ``listening on http://HOST:PORT``, and serve until interrupted.

    Raises:
        BackendUnavailableError: the ``serve`` extra is not installed.
        EdgeclsError: a model does not load or fails its check.
        ServiceError: the address cannot be bound, the capture folder cannot be made.
    """
    try:
        import uvicorn
    except ImportError:
        raise BackendUnavailableError("edgecls serve needs Starlette and uvicorn: pip install 'edgecls[serve]'",
                                      extra="serve") from None
    models, app = _build(model_args, options)
    service = app.state.service
    try:
        sock = listen(options.host, options.port)
    except OSError as exc:
        service.close()
        models.close()
        raise ServiceError(f"cannot listen on {options.host}:{options.port} ({exc.strerror or exc})") from exc
    reloader = _Reloader(models, service, announce)
    previous = signal.signal(signal.SIGHUP, reloader.on_hangup) if hasattr(signal, "SIGHUP") else None
    if options.watch:
        threading.Thread(target=reloader.watch, name="edgecls-watch", daemon=True).start()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
    announce(f"edgecls serve: listening on http://{shown}:{port} (models: {', '.join(models.models)}; "
             f"default {models.default}; {options.workers} worker(s) each)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        reloader.stop.set()
        if previous is not None:
            signal.signal(signal.SIGHUP, previous)
        sock.close()
        service.close()
        models.close()


def _build(model_args: Sequence[str], options: ServerOptions) -> tuple[ModelSet, Starlette]:
    """The models and the app serving them. Raises EdgeclsError (a model), ServiceError (the capture folder)."""
    models = ModelSet(parse_model_args(model_args), workers=options.workers, threads=options.threads,
                      trust=options.trust, monitor=options.monitor,
                      engine={"backend": options.backend, "device": options.device})
    try:
        return models, create_app(models, options.service)
    except EdgeclsError:
        models.close()
        raise
    except OSError as exc:
        models.close()
        raise ServiceError(f"capture folder {options.service.capture.dir}: {exc.strerror or exc}") from exc


class _Reloader:
    """Reloads on SIGHUP (every model) and, with ``--watch``, when a model file is replaced; says each
    reload (or refusal: the loaded model keeps serving) through ``announce``."""

    def __init__(self, models: ModelSet, service: Service, announce: Callable[[str], None]) -> None:
        self.models, self.service, self.announce = models, service, announce
        self.stop = threading.Event()

    def reload_one(self, name: str, why: str) -> None:
        try:
            served = self.service.reload(name)
            self.announce(f"edgecls serve: reloaded {name} ({why}): sha256 {served.pool.sha256[:12]}")
        except EdgeclsError as exc:
            self.announce(f"edgecls serve: reload of {name} refused ({why}), the loaded model keeps serving: {exc}")

    def reload_all(self, why: str) -> None:
        for name in list(self.models.models):
            self.reload_one(name, why)

    def on_hangup(self, signum, frame) -> None:
        threading.Thread(target=self.reload_all, args=("SIGHUP",), name="edgecls-reload", daemon=True).start()

    def watch(self) -> None:
        stamps = {name: _stamp(m.path) for name, m in self.models.models.items()}
        while not self.stop.wait(WATCH_INTERVAL_S):
            for name, served in self.models.models.items():
                now = _stamp(served.path)
                if now is not None and now != stamps[name]:
                    stamps[name] = now
                    self.reload_one(name, "file replaced")
