"""The HTTP service: a small Starlette app over a :class:`~edgecls.serve.models.ModelSet`.

Endpoints: ``POST /v1/classify[/NAME]`` (multipart field ``image`` or a raw image body; ``top_k``,
``threshold``), the DeepStack scene API ``POST /v1/vision/scene`` and ``POST /v1/vision/custom/NAME``
(``{"success": true, "label": ..., "confidence": ...}``), ``GET /v1/models``, ``POST
/v1/models/NAME/reload``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` (Prometheus).

Classification runs on worker threads (never on the event loop), at most ``workers`` at a time per
model, each with a classifier of its own; at most ``max_queue`` more wait, and a request beyond that is
answered 503 with ``Retry-After`` at once. Every bad request is a 4xx with a one-line JSON error.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edgecls.runtime.capture import CaptureOptions, HardExamples
from edgecls.runtime.errors import EdgeclsError
from edgecls.serve.metrics import Metrics
from edgecls.serve.models import ModelSet, ServedModel

__all__ = ["ServeOptions", "create_app", "HTTPError"]


@dataclass(frozen=True)
class ServeOptions:
    """How the service answers: ``api_key`` (None: open), ``max_body_bytes``, ``max_queue`` requests
    waiting per model beyond the ``workers`` running; ``capture``: keep the images a model was unsure
    about (in ``capture.dir``, or ``capture.dir/NAME`` per model when several are served)."""

    api_key: str | None = None
    max_body_bytes: int = 20 * 1000 * 1000
    max_queue: int = 32
    capture: CaptureOptions | None = None


class HTTPError(Exception):
    """A request edgecls refuses: its status, message and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


_RAW_TYPES = ("image/", "application/octet-stream")


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPError(413, f"request body of {int(length):,} bytes is over the limit of {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"request body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette re-reads a body it has cached (for the multipart form)
    return body


async def _image(request: Request, limit: int) -> tuple[bytes, dict[str, str]]:
    """The image bytes and the text fields of a request (multipart ``image``, or a raw image body)."""
    body = await _body(request, limit)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields = dict(request.query_params)
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_part_size=limit)
        except Exception as exc:  # the multipart parser's errors
            raise HTTPError(400, f"malformed multipart body ({str(exc).strip() or type(exc).__name__})") from None
        upload = form.get("image")
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
        if upload is None or isinstance(upload, str):
            raise HTTPError(400, "no image: send the picture as the multipart file field 'image'")
        data = await upload.read()
    elif kind.startswith(_RAW_TYPES):
        data = body
    else:
        raise HTTPError(415, f"unsupported content type {kind or '(none)'!r}: send multipart/form-data with a "
                             "field 'image', or the image itself as image/jpeg, image/png, ...")
    if not data:
        raise HTTPError(400, "the image is empty (0 bytes)")
    return data, fields


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
        self.limiters = {name: anyio.CapacityLimiter(models.workers) for name in models.models}
        self.waiting = dict.fromkeys(models.models, 0)
        self.captures: dict[str, HardExamples] = {}
        if options.capture is not None:
            several = len(models.models) > 1
            for name, served in models.models.items():
                folder = Path(options.capture.dir) / name if several else Path(options.capture.dir)
                self.captures[name] = HardExamples(replace(options.capture, dir=folder), labels=served.pool.card.labels,
                                                   model_sha256=served.pool.sha256)
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
        key = self.options.api_key
        if key is None:
            return
        given = self._given(request, fields)
        if not given or not hmac.compare_digest(given.encode(), key.encode()):
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
        offered = self._given(request)
        if offered is not None:  # a key in the headers or the query: refused before the body is read
            self.authorize(request)
        data, fields = await _image(request, self.options.max_body_bytes)
        if offered is None:  # DeepStack's clients send it as a form field
            self.authorize(request, fields)
        served = self.model(name)
        top_k = _number(fields, "top_k", int, 5)
        threshold = _number(fields, "threshold", float, 0.0)
        if top_k < 1 or not 0.0 <= threshold <= 1.0:
            raise HTTPError(400, f"top_k must be ≥ 1 and threshold within 0..1, got {top_k} and {threshold}")
        if self.waiting[served.name] >= self.models.workers + self.options.max_queue:
            raise HTTPError(503, f"model {served.name!r} is busy ({self.waiting[served.name]} requests in hand); "
                                 "try again shortly", {"Retry-After": "1"})
        self.waiting[served.name] += 1
        capture = self.captures.get(served.name)
        source = f"{request.method} {request.url.path} from {request.client.host if request.client else '?'}"
        try:
            with served.lease() as pool:  # finishes on the pool it started with, whatever a reload does

                def work():
                    with pool.borrow() as clf:
                        result = clf.classify(data, max_results=top_k, score_threshold=threshold)
                    if capture is not None:  # the request's own bytes; the pool's model and labels
                        capture.offer(data, result.scores, source=source, model_sha256=pool.sha256,
                                      labels=pool.card.labels)
                    return result

                result = await anyio.to_thread.run_sync(work, limiter=self.limiters[served.name])
        except EdgeclsError as exc:
            raise HTTPError(400, str(exc)) from None
        finally:
            self.waiting[served.name] -= 1
        return served, result, pool.sha256


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

    def observed(result) -> None:
        t = result.timings
        service.metrics.preprocess.observe(t.preprocess_ms / 1000)
        service.metrics.inference.observe(t.inference_ms / 1000)

    async def classify(request: Request) -> dict[str, Any]:
        served, result, sha = await service.classify(request, request.path_params.get("name"))
        observed(result)
        return {"model": served.name, "model_sha256": sha, **result.to_dict()}

    async def scene(request: Request) -> dict[str, Any]:
        _, result, _ = await service.classify(request, request.path_params.get("name"))
        observed(result)
        top = result.categories[0] if result.categories else None
        return {"label": None if top is None else top.label, "confidence": 0.0 if top is None else top.score}

    async def list_models(request: Request) -> dict[str, Any]:
        service.authorize(request)
        return {"default": models.default, "models": [m.describe() for m in models.models.values()]}

    async def reload(request: Request) -> dict[str, Any]:
        service.authorize(request)
        name = request.path_params["name"]
        service.model(name)
        try:
            served = await anyio.to_thread.run_sync(service.reload, name)
        except EdgeclsError as exc:
            raise HTTPError(422, f"reload refused, the loaded model keeps serving: {exc}") from None
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
