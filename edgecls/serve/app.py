"""The HTTP service: a small Starlette app over a :class:`~edgecls.serve.models.ModelSet`.

Endpoints: ``POST /v1/classify[/NAME]`` (multipart field ``image`` or a raw image body; ``top_k``,
``threshold``), the DeepStack scene API ``POST /v1/vision/scene`` and ``POST /v1/vision/custom/NAME``
(``{"success": true, "label": ..., "confidence": ...}``), ``GET /v1/models``, ``POST
/v1/models/NAME/reload``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` (Prometheus).

Regions: with a form or query field ``boxes`` (JSON: a list of ``[x_min, y_min, x_max, y_max]`` pixel
boxes or objects with them, or a DeepStack detection answer as it came) and optionally ``crop`` (a crop
policy), every box of the image is classified, as one batch: ``/v1/classify`` answers ``regions``,
one per box in order; the DeepStack endpoints answer a detection-shaped ``predictions`` list (each box with
the classifier's label and confidence). A capture keeps the crop, not the frame.

Classification runs on worker threads (never on the event loop), at most ``workers`` at a time per
model, each with a classifier of its own; at most ``max_queue`` more wait, and a request beyond that is
answered 503 with ``Retry-After`` at once. Every bad request is a 4xx with a one-line JSON error; a
failure of the server (an engine error) is a 5xx whose answer names no file (the log has the cause).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edgecls.runtime.capture import CaptureOptions, HardExamples
from edgecls.runtime.capture_store import folder_name
from edgecls.runtime.errors import EdgeclsError, OptionError, http_status
from edgecls.serve.errors import HTTPError
from edgecls.serve.jobs import Job, classified_timings, classify_answer, deepstack_answer, read_regions
from edgecls.serve.metrics import Metrics
from edgecls.serve.models import ModelSet, ServedModel
from edgecls.serve.upload import Unverified, read_upload

__all__ = ["ServeOptions", "create_app", "HTTPError"]

logger = logging.getLogger("edgecls.serve")


@dataclass(frozen=True)
class ServeOptions:
    """How the service answers: ``api_key`` (None: open), ``max_body_bytes``, ``max_queue`` requests
    waiting per model beyond the ``workers`` running (a request counts from the moment its body is
    read); ``max_unverified`` bodies held at once before their key is known (see
    :mod:`edgecls.serve.upload`); ``capture``: keep the images a model was unsure about (in
    ``capture.dir``, or ``capture.dir/NAME`` per model when several are served, NAME made a safe
    folder name)."""

    api_key: str | None = None
    max_body_bytes: int = 20 * 1000 * 1000
    max_queue: int = 32
    capture: CaptureOptions | None = None
    max_unverified: int = 4


def _number(fields: dict[str, str], name: str, kind: type, default: Any) -> Any:
    if name not in fields:
        return default
    try:
        return kind(fields[name])
    except ValueError:
        raise HTTPError(400, f"{name} must be a number, got {fields[name]!r}") from None


class Service:
    """Per-app state: the models, their limiters and queues, the metrics."""

    def __init__(self, models: ModelSet, options: ServeOptions) -> None:
        self.models, self.options = models, options
        self.metrics = Metrics(models)
        self.metrics.watch_drift(models)
        self.limiters = {name: anyio.CapacityLimiter(models.workers) for name in models.models}
        self.waiting = dict.fromkeys(models.models, 0)
        self.unverified = Unverified(options.max_unverified)
        self.captures: dict[str, HardExamples] = {}
        if options.capture is not None:
            try:
                for name, folder in capture_folders(Path(options.capture.dir), list(models.models)).items():
                    served = models.models[name]
                    output = served.pool.card.output
                    self.captures[name] = HardExamples(
                        replace(options.capture, dir=folder), labels=served.pool.card.labels,
                        model_sha256=served.pool.sha256,
                        thresholds=output.label_thresholds() if output.multi_label else None)
            except BaseException:  # the writers started before it stop
                self.close()
                raise
            self.metrics.watch_captures(self.captures)

    def close(self) -> None:
        """Write the captures still queued and stop their writers (the models are the ModelSet's to close)."""
        for writer in self.captures.values():
            writer.close()

    @staticmethod
    def _given(request: Request, fields: dict[str, str] | None = None) -> str | None:
        """The key a request offers: X-API-Key, a Bearer token, the ``api_key`` query or form field."""
        given = request.headers.get("x-api-key") or request.query_params.get("api_key") or (fields or {}).get("api_key")
        auth = request.headers.get("authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return given or None

    def authorize(self, request: Request, fields: dict[str, str] | None = None) -> None:
        """Raise HTTPError 401 unless the request offers the key (nothing to check without one)."""
        self._check_key(self._given(request, fields))

    def _check_key(self, given: str | None) -> None:
        key = self.options.api_key
        if key is not None and (not given or not hmac.compare_digest(given.encode(), key.encode())):
            raise HTTPError(401, "missing or wrong API key (X-API-Key header, Bearer token or api_key field)")

    def reload(self, name: str) -> ServedModel:
        """Reload ``name`` (blocking: call it off the event loop), counted in the metrics.

        Raises:
            KeyError: unknown model.
            EdgeclsError: the new file was refused; the loaded model keeps serving.
        """
        try:
            served = self.models.reload(name)
        except EdgeclsError:
            self.metrics.reloads.labels(name, "refused").inc()
            raise
        self.metrics.reloads.labels(name, "ok").inc()
        self.metrics.describe(self.models)
        return served

    def model(self, name: str | None) -> ServedModel:
        try:
            return self.models.get(name)
        except KeyError:
            raise HTTPError(404, f"no model named {name!r} (served: {', '.join(self.models.models)})") from None

    async def classify(self, request: Request, name: str | None) -> tuple[ServedModel, Any, str]:
        """Classify the request's image with model ``name`` (None: the default).

        Before any of the body is read: the model is known (404), a key in the headers or query is
        checked (401), and the model has room (503). A key in the form is checked as soon as it arrives.

        Raises:
            HTTPError: a refusal (4xx), a busy model (503), or a failure of the model (5xx, the cause in
                the server's log, not in the answer).
        """
        served = self.model(name)
        check_key = None
        if self.options.api_key is not None:
            if self._given(request) is not None:
                self.authorize(request)
            else:  # DeepStack's clients send it as a form field
                check_key = self._check_key
        if self.waiting[served.name] >= self.models.workers + self.options.max_queue:
            raise HTTPError(503, f"model {served.name!r} is busy ({self.waiting[served.name]} requests in hand); "
                                 "try again shortly", {"Retry-After": "1"})
        self.waiting[served.name] += 1
        try:
            upload = await read_upload(request, limit=self.options.max_body_bytes, check_key=check_key,
                                       unverified=self.unverified)
            return await self._run(request, served, upload.image, upload.fields)
        finally:
            self.waiting[served.name] -= 1

    async def _run(self, request: Request, served: ServedModel, data: bytes,
                   fields: dict[str, str]) -> tuple[ServedModel, Any, str]:
        top_k = _number(fields, "top_k", int, 5)
        threshold = _number(fields, "threshold", float, 0.0)
        if top_k < 1 or not 0.0 <= threshold <= 1.0:
            raise HTTPError(400, f"top_k must be ≥ 1 and threshold within 0..1, got {top_k} and {threshold}")
        source = f"{request.method} {request.url.path} from {request.client.host if request.client else '?'}"
        try:
            regions = read_regions(fields)
            with served.lease() as pool:  # finishes on the pool it started with, whatever a reload does
                job = Job(pool, data, regions, self.captures.get(served.name), source, top_k, threshold)
                result = await anyio.to_thread.run_sync(job, limiter=self.limiters[served.name])
        except EdgeclsError as exc:
            raise refusal(exc, f"{source}: model {served.name!r}") from None
        return served, result, pool.sha256


def refusal(exc: EdgeclsError, where: str) -> HTTPError:
    """The answer to an error raised while serving: the client's fault (4xx) with its message; the
    server's (5xx) with the error's kind only, its message (which names files on the server) logged."""
    status = http_status(exc)
    if status < 500:
        return HTTPError(status, str(exc))
    logger.error("edgecls serve: %s failed: %s", where, exc)
    return HTTPError(status, f"the model failed on this request ({type(exc).__name__}); the server's log has "
                             "the cause")


def capture_folders(root: Path, names: list[str]) -> dict[str, Path]:
    """Each served model's capture folder: ``root`` itself for one model, else ``root/NAME`` with NAME a
    safe folder name (a card's name may hold ``/`` or ``..``: nothing is created outside ``root``).

    Raises:
        OptionError: two names that make the same folder name.
    """
    if len(names) == 1:
        return {names[0]: root}
    folders: dict[str, Path] = {}
    for name in names:
        folder = root / folder_name(name)
        taken = next((other for other, path in folders.items() if path == folder), None)
        if taken is not None:
            raise OptionError(f"models {taken!r} and {name!r} would capture into the same folder {folder}; "
                              "name them with NAME=PATH")
        folders[name] = folder
    return folders


def _endpoint(service: Service, label: str, deepstack: bool,
              handler: Callable[[Request], Awaitable[dict[str, Any]]]) -> Callable[[Request], Awaitable[Response]]:
    """Wraps a handler: metrics, in-flight count, and every refusal as a 4xx/5xx JSON line."""

    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        service.metrics.in_flight.inc()
        try:
            body, status, headers = await handler(request), 200, {}
        except HTTPError as exc:
            body, status, headers = {"success": False, "error": exc.message}, exc.status, exc.headers
        except ClientDisconnect:  # nobody to answer: one line, no traceback
            logger.warning("edgecls serve: %s %s: the client went away before its request was read",
                        request.method, request.url.path)
            body, status, headers = {"success": False, "error": "client went away"}, 499, {}
        finally:
            service.metrics.in_flight.dec()
        service.metrics.requests.labels(label, str(status)).inc()
        service.metrics.latency.labels(label).observe(time.perf_counter() - start)
        if status == 200 and deepstack:
            body = {"success": True, **body}
        return JSONResponse(body, status_code=status, headers=headers)

    return endpoint


def create_app(models: ModelSet, options: ServeOptions | None = None) -> Starlette:
    """The ASGI app serving ``models`` (run it with uvicorn, or ``edgecls serve``)."""
    service = Service(models, options or ServeOptions())

    async def classify(request: Request) -> dict[str, Any]:
        served, result, sha = await service.classify(request, request.path_params.get("name"))
        service.metrics.observe(classified_timings(result))
        return {"model": served.name, "model_sha256": sha, **classify_answer(result)}

    async def scene(request: Request) -> dict[str, Any]:
        _, result, _ = await service.classify(request, request.path_params.get("name"))
        service.metrics.observe(classified_timings(result))
        return deepstack_answer(result)

    async def list_models(request: Request) -> dict[str, Any]:
        service.authorize(request)
        return {"default": models.default, "models": [m.describe() for m in models.models.values()]}

    async def reload(request: Request) -> dict[str, Any]:
        service.authorize(request)
        name = request.path_params["name"]
        service.model(name)
        try:
            served = await anyio.to_thread.run_sync(service.reload, name)
        except EdgeclsError as exc:  # the file on the server was refused: the operator asked, the path is theirs
            status = http_status(exc)  # a signature's 403, a downgrade's 409; any other refusal 422
            raise HTTPError(status if 400 <= status < 500 else 422,
                            f"reload refused, the loaded model keeps serving: {exc}") from None
        return {"success": True, "model": served.describe()}

    async def healthz(request: Request) -> dict[str, Any]:
        return {"status": "alive"}

    async def readyz(request: Request) -> dict[str, Any]:
        service.authorize(request)
        return {"status": "ready", "models": list(models.models)}

    async def metrics(request: Request) -> Response:
        try:
            service.authorize(request)
        except HTTPError as exc:
            return JSONResponse({"success": False, "error": exc.message}, status_code=exc.status)
        text, kind = service.metrics.render()
        return Response(text, media_type=kind)

    routes = [
        Route("/v1/classify", _endpoint(service, "classify", False, classify), methods=["POST"]),
        Route("/v1/classify/{name}", _endpoint(service, "classify", False, classify), methods=["POST"]),
        Route("/v1/vision/scene", _endpoint(service, "scene", True, scene), methods=["POST"]),
        Route("/v1/vision/custom/{name}", _endpoint(service, "custom", True, scene), methods=["POST"]),
        Route("/v1/models", _endpoint(service, "models", False, list_models), methods=["GET"]),
        Route("/v1/models/{name}/reload", _endpoint(service, "reload", False, reload), methods=["POST"]),
        Route("/healthz", _endpoint(service, "healthz", False, healthz), methods=["GET"]),
        Route("/readyz", _endpoint(service, "readyz", False, readyz), methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    async def refused(request: Request, exc: StarletteHTTPException) -> Response:
        """Starlette's own refusals (an unknown path, a wrong method) in the same JSON shape."""
        return JSONResponse({"success": False, "error": f"{exc.detail}: {request.method} {request.url.path}"},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    app = Starlette(routes=routes, exception_handlers={StarletteHTTPException: refused})
    app.state.service = service
    return app
