"""``edgecls serve``: a local HTTP service (DeepStack-compatible) for camera and home-automation apps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edgecls.commands.common import (
    backend_option,
    capture_options,
    device_option,
    takes,
    threads_option,
    trust_options,
)

if TYPE_CHECKING:
    from edgecls.runtime.capture import CaptureOptions
    from edgecls.runtime.trust import Trust

EPILOG = """\b
Examples:
  edgecls serve model_int8.tflite
  edgecls serve digits=model_int8.tflite faces=faces_int8.onnx --port 5000 --workers 2
  edgecls serve model_int8.tflite --api-key-file key.txt --watch
  edgecls serve model_int8.tflite --capture hard/ --capture-below 0.6 --capture-max-mb 500
\b
  curl -F image=@photo.jpg http://127.0.0.1:5000/v1/vision/scene
  curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:5000/v1/classify?top_k=3
  curl -X POST http://127.0.0.1:5000/v1/models/digits/reload
\b
Binds 127.0.0.1 unless --host says otherwise. SIGHUP reloads every model from its file.
"""


@dataclass(frozen=True)
class ServeFlags:
    """``edgecls serve``'s parameters."""

    models: tuple[str, ...]
    host: str
    port: int
    workers: int | None
    threads: int | None
    backend: str
    device: str
    api_key: str | None
    api_key_file: Path | None
    max_body_mb: float
    max_queue: int
    watch: bool
    capture: CaptureOptions | None
    drift: bool
    drift_window: int | None
    drift_every: int
    trust: Trust | None


@click.command(epilog=EPILOG)
@click.argument("models", nargs=-1, required=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--workers", type=click.IntRange(min=1), help="Classifiers per model, run in parallel (default: cores).")
@threads_option
@backend_option
@device_option
@click.option("--api-key", help="Require this key (X-API-Key header, Bearer token, or api_key field).")
@click.option("--api-key-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Read the key from a file (keeps it out of the process list).")
@click.option("--max-body-mb", default=20.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest request body, in MB.")
@click.option("--max-queue", default=32, show_default=True, type=click.IntRange(min=0),
              help="Requests waiting per model beyond the running ones; more get 503 with Retry-After.")
@click.option("--watch", is_flag=True, help="Reload a model when its file is replaced on disk.")
@capture_options
@click.option("--drift", is_flag=True, help="Watch each model for drift against its reference profile: "
                                            "edgecls_drift_psi and edgecls_drift_state on /metrics.")
@click.option("--drift-window", type=click.IntRange(min=20), help="Requests per drift comparison (default 500; "
                                                                  "implies --drift).")
@click.option("--drift-every", default=4, show_default=True, type=click.IntRange(min=1),
              help="Read one in this many for drift (consecutive frames are near copies).")
@trust_options
@takes(ServeFlags)
def serve(f: ServeFlags) -> None:
    """Serve models over HTTP: /v1/classify, the DeepStack scene API, /v1/models, /metrics.

    MODELS are PATH (named by the model card) or NAME=PATH; the first is the default. A PATH that is an
    export folder runs what its deploy.json names (edgecls bench --pick). With --capture,
    the images a model was unsure about are kept (DIR/NAME/<label>/ per model when several are served).
    """
    import os

    from edgecls.serve.app import ServeOptions
    from edgecls.serve.run import ServerOptions, run_server

    if f.api_key and f.api_key_file:
        raise click.UsageError("--api-key and --api-key-file are mutually exclusive")
    api_key = f.api_key
    if f.api_key_file:
        api_key = f.api_key_file.read_text().strip()
        if not api_key:
            raise click.UsageError(f"{f.api_key_file} is empty")
    service = ServeOptions(api_key=api_key, max_body_bytes=int(f.max_body_mb * 1e6), max_queue=f.max_queue,
                           capture=f.capture)
    run_server(list(f.models), ServerOptions(host=f.host, port=f.port, workers=f.workers or len(os.sched_getaffinity(0)),
                                             threads=f.threads, backend=f.backend, device=f.device,
                                             watch=f.watch, service=service,
                                             trust=f.trust, monitor=_monitor(f)),
               announce=lambda line: click.echo(line, err=True))


def _monitor(f: ServeFlags):
    """The drift monitor's options (None without --drift or --drift-window)."""
    if not (f.drift or f.drift_window):
        return None
    from edgecls.runtime.monitor import MonitorOptions

    return MonitorOptions(window=f.drift_window or 500, every=f.drift_every)
