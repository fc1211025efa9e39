"""Helpers shared by the commands."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import click

from edgecls.commands.text import printable


def takes(flags_type: type) -> Callable[[Callable[[Any], Any]], Callable[..., Any]]:
    """Hand a click command its parameters as one ``flags_type`` instance (a dataclass with a field per
    parameter); put it right above the ``def``, under the option decorators."""

    def decorate(func: Callable[[Any], Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def command(**params: Any) -> Any:
            return func(flags_type(**params))

        return command

    return decorate


def image_paths(inputs: Sequence[str]) -> list[Path]:
    """Files as given; folders walked (sorted) for image files.

    Raises:
        DatasetError: a folder without images, or nested too deep.
    """
    from edgecls.runtime.datasets import list_images

    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths.extend(list_images(path))
        else:
            paths.append(path)
    return paths


def csv_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """Click callback: ``"a,b"`` → ``["a", "b"]``."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def float_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    """Click callback: ``"1,2.5"`` → ``[1.0, 2.5]``; bad numbers are a usage error."""
    if value is None:
        return None
    try:
        return [float(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


def _two_sizes(value: str | None, order: str, example: str) -> tuple[int, int] | None:
    """``"AxB"`` → ``(A, B)``, positive integers; ``order`` (``"HxW"``, ``"WxH"``) and ``example`` word the error."""
    if value is None:
        return None
    try:
        first, second = (int(v) for v in value.lower().split("x"))
        if first <= 0 or second <= 0:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"expected {order} with positive integers, e.g. {example}, got {value!r}") from None
    return first, second


def size_hw(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """Click callback: ``"224x224"`` (height x width, as a model input is written) → ``(224, 224)``."""
    return _two_sizes(value, "HxW", "224x224")


def size_wh(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """Click callback: ``"640x480"`` (width x height, as a frame size is written) → ``(640, 480)``."""
    return _two_sizes(value, "WxH", "640x480")


def use_rich() -> bool:
    """Progress display only on a terminal, never with NO_COLOR or ``-q``."""
    import os
    import sys

    return sys.stderr.isatty() and not os.environ.get("NO_COLOR") and not quiet()


def quiet() -> bool:
    """Whether ``edgecls -q`` was given."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and (ctx.find_root().obj or {}).get("quiet"))


def verbose() -> bool:
    """Whether ``edgecls -v`` was given."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and (ctx.find_root().obj or {}).get("verbose"))


def console(stderr: bool = False, stream=None):
    """A rich Console: colour only on a terminal without NO_COLOR; wide enough for tables when piped.
    Plain text where rich is not installed (runtime-only environments)."""
    import os
    import sys

    stream = stream or (sys.stderr if stderr else sys.stdout)
    try:
        from rich.console import Console
    except ImportError:
        from edgecls.commands.plain import PlainConsole as Console

        return _Printable.of(Console)(stream)
    tty = stream.isatty() and not os.environ.get("NO_COLOR")
    # markup off: a label or path with "[/]" in it is text, not a rich tag (it raised MarkupError)
    return _Printable.of(Console)(file=stream, no_color=not tty, highlight=False, markup=False,
                                  width=None if stream.isatty() else 200)


def load_classifier(model, **kwargs):
    """``Classifier.from_path`` with the engines' native load-time logs kept off the terminal (unless -v),
    and what was assumed for the file (its notes: a card ignored, defaults used) said once as ``warning:``
    lines on stderr (none with -q; with -v the log has said them already)."""
    from edgecls.commands.quiet import captured_output
    from edgecls.commands.text import echo
    from edgecls.runtime import Classifier

    with captured_output(verbose()):
        clf = Classifier.from_path(model, **kwargs)
    from edgecls.runtime.deploy import DEPLOY_FILE

    if not quiet() and not verbose():
        for note in clf.notes:  # what a folder's deploy.json chose is news, not a warning
            echo(f"{'note' if f'{DEPLOY_FILE}: running ' in note else 'warning'}: {note}", err=True)
    return clf


class _Printable:
    """Mixes into a console or table class: every string printed or put in a cell goes through
    :func:`~edgecls.commands.text.printable` (labels and paths come from files nobody checked)."""

    _classes: ClassVar[dict[type, type]] = {}

    @classmethod
    def of(cls, base: type) -> type:
        if base not in cls._classes:
            cls._classes[base] = type(f"Printable{base.__name__}", (cls, base), {})
        return cls._classes[base]

    def print(self, *objects, **kwargs):
        return super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)

    def add_row(self, *cells, **kwargs):
        return super().add_row(*(printable(c) if isinstance(c, str) else c for c in cells), **kwargs)

    def add_column(self, header="", *args, **kwargs):
        return super().add_column(printable(header), *args, **kwargs)


def make_table(title: str):
    """A ``rich.table.Table``, or a :class:`~edgecls.commands.plain.PlainTable` without rich; cells printable."""
    try:
        from rich.table import Table
    except ImportError:
        from edgecls.commands.plain import PlainTable as Table
    return _Printable.of(Table)(title=printable(title), title_justify="left")


PASSPHRASE_HELP = "Name of an environment variable holding the private key's passphrase."


def passphrase_from_env(variable: str | None) -> bytes | None:
    """The passphrase in the environment variable ``variable`` (None: no passphrase). Raises UsageError: unset."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise click.UsageError(f"{variable}: the passphrase variable is not set")
    return value.encode()


def trust_options(func):
    """``--trusted-key PUB.pem`` (repeatable), ``--state DIR`` and ``--allow-downgrade``, passed to the command
    as ``trust``: a :class:`~edgecls.runtime.trust.Trust`, or None (then ``EDGECLS_TRUSTED_KEYS`` decides)."""

    @functools.wraps(func)
    def wrapper(*args, trusted_key=(), state=None, allow_downgrade=False, **kwargs):
        trust = None
        if trusted_key or state is not None or allow_downgrade:
            from edgecls.runtime.trust import Trust

            trust = Trust.of(list(trusted_key) or None, state_dir=state, allow_downgrade=allow_downgrade)
        return func(*args, trust=trust, **kwargs)

    wrapper = click.option("--allow-downgrade", is_flag=True,
                           help="Load a signed model older than the version --state accepted before (logged).")(wrapper)
    wrapper = click.option("--state", type=click.Path(file_okay=False),
                           help="With trusted keys: a folder keeping the highest version accepted per model name; "
                                "an older one is refused (default: EDGECLS_STATE_DIR, else not kept).")(wrapper)
    return click.option("--trusted-key", multiple=True, type=click.Path(dir_okay=False, exists=True),
                        help="Run only models signed by this public key (PEM; repeat for several, as in a key "
                             "rotation). Default: EDGECLS_TRUSTED_KEYS, else unchecked.")(wrapper)


def model_options(func):
    """``--labels FILE``, ``--mean`` and ``--std`` for a model without a card (or to override its labels), and
    the :func:`trust_options`, passed to the command as one ``model_kwargs`` dict for :func:`load_classifier`.
    Put it right above the function, below the other options."""

    @functools.wraps(func)
    def wrapper(*args, labels=None, mean=None, std=None, trust=None, **kwargs):
        return func(*args, model_kwargs={"labels": labels, "mean": mean, "std": std, "trusted_keys": trust}, **kwargs)

    wrapper = trust_options(wrapper)

    wrapper = click.option("--std", callback=float_list,
                           help="With --mean: per-channel std on 0-255 pixels, e.g. 58.4,57.1,57.4.")(wrapper)
    wrapper = click.option("--mean", callback=float_list,
                           help="For a model without a card whose graph does not normalize: per-channel mean "
                                "on 0-255 pixels, e.g. 123.7,116.3,103.5 (give --std too).")(wrapper)
    return click.option("--labels", type=click.Path(dir_okay=False, exists=True),
                        help="A text file with one label per line (for a model without a card, or to "
                             "override its labels).")(wrapper)


THREADS_HELP = "Engine threads, at least 1 (leave it out to use every core)."
CROP_HELP = ("How a box becomes the model's input: MODE[:SCALE][,min=N][,shift|pad[=V|=edge]][,area|linear|warp], "
             "MODE square (the box's longest edge, as Frigate), stretch (the box, as MediaPipe) or letterbox, shrunk "
             "anti-aliased (area), bilinear (linear, Frigate's) or bilinear corner to corner (warp, MediaPipe's); or "
             "frigate, mediapipe (theirs exactly). "
             "Default: the model card's, else square:1,shift.")


def threads_option(func):
    """``--threads N``: one rule for every command (below 1 is a usage error, exit 2)."""
    return click.option("--threads", default=None, type=click.IntRange(min=1), help=THREADS_HELP)(func)


def thread_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """``--threads 1,2,4`` (bench): integers of at least 1, else a usage error like ``--threads N``'s."""
    if value is None:
        return None
    try:
        counts = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma list of integers") from None
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"{value!r}: every count must be at least 1")
    return counts


class _BackendOption(click.Option):
    """``--backend``, whose help lists the backends registered when the help is shown (plug-ins that
    ``EDGECLS_PLUGINS`` brought in included)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from edgecls.runtime.backends import registered

        self.help = "auto, " + ", ".join("/".join((spec.name, *spec.aliases)) for spec in registered()) + "."
        return super().get_help_record(ctx)


def backend_option(func):
    """``--backend``, its choices from the runtime's backend registry."""
    return click.option("--backend", cls=_BackendOption, default="auto", show_default=True)(func)


def device_option(func):
    """``--device``, its choices from the runtime's devices."""
    from edgecls.runtime.backends.base import DEVICES

    return click.option("--device", default="cpu", show_default=True, type=click.Choice(DEVICES))(func)


def capture_options(func):
    """``--capture DIR`` and its rules, passed to the command as ``capture`` (a
    :class:`~edgecls.runtime.capture.CaptureOptions`, or None without ``--capture``)."""

    @functools.wraps(func)
    def wrapper(*args, capture_dir=None, capture_below=None, capture_margin=None, capture_near=None,
                capture_every=None, capture_per_minute=None, capture_max_files=None, capture_max_mb=None, **kwargs):
        given = {"below_score": capture_below, "below_margin": capture_margin, "near_threshold": capture_near,
                 "every_n": capture_every, "max_per_minute": capture_per_minute, "max_files": capture_max_files,
                 "max_mb": capture_max_mb}
        rules = {k: v for k, v in given.items() if v is not None}
        capture = None
        if capture_dir is not None:
            from edgecls.runtime.capture import CaptureOptions

            if capture_margin is not None and capture_below is None:
                rules["below_score"] = None  # the margin alone decides
            capture = CaptureOptions(capture_dir, **rules)
        elif rules:
            raise click.UsageError("the --capture-* options need --capture DIR")
        return func(*args, capture=capture, **kwargs)

    share = click.FloatRange(0, 1, min_open=True)
    for name, kind, text in reversed((
        ("--capture", click.Path(file_okay=False, path_type=Path), "Save the frames the model was unsure about "
         "as DIR/<label>/<time>.jpg with a JSON sidecar (the folder layout eval, --calib and --val read)."),
        ("--capture-below", share, "Capture when the top score is under this (default 0.6 unless "
         "--capture-margin is given)."),
        ("--capture-margin", share, "Capture when top-1 minus top-2 score is under this."),
        ("--capture-near", share, "A multi-label model: capture when a label's score is within this of its "
         "threshold (default 0.1)."),
        ("--capture-every", click.IntRange(min=1), "Keep one in every N hard frames (default 1)."),
        ("--capture-per-minute", click.FloatRange(0, min_open=True), "At most this many captures a minute."),
        ("--capture-max-files", click.IntRange(min=1), "Cap on the files kept; the oldest go first (default 10000)."),
        ("--capture-max-mb", click.FloatRange(0, min_open=True), "Cap on the folder's size (default 1000)."),
    )):
        dest = "capture_dir" if name == "--capture" else name[2:].replace("-", "_")
        wrapper = click.option(name, dest, type=kind, default=None, help=text)(wrapper)
    return wrapper
