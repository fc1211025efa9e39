"""The ``edgecls`` command line: a thin layer mapping errors to exit codes.

Exit codes: 0 success, 1 an :class:`EdgeclsError` (one ``error: ...`` line on
stderr; traceback only with ``-v``), 2 bad usage. Heavy modules (the runtime's
engines, the converters, TensorFlow) are imported only by the commands that need them.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

import click

from edgecls import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecls")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and TensorFlow's own logs.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display or notes; results only.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Export Keras image classifiers to TFLite/ONNX and run them at the edge.

    \b
    Start with:  edgecls demo
    Then:        edgecls export model.h5 --quantize fp32,int8 --calib data/train --val data/val
                 edgecls predict model_int8.tflite photo.jpg
                 edgecls eval model_int8.tflite data/val
                 edgecls bench model_fp32.tflite model_int8.tflite

    Exit codes: 0 success, 1 error (one "error:" line on stderr), 2 bad usage.
    """
    if verbose and quiet:
        raise click.UsageError("-v and -q are mutually exclusive")
    ctx.obj = {"verbose": verbose, "quiet": quiet}


def _register() -> None:
    from edgecls.commands.batch import batch
    from edgecls.commands.bench import bench
    from edgecls.commands.demo import demo
    from edgecls.commands.drift import drift, profile
    from edgecls.commands.evaluate import evaluate_command
    from edgecls.commands.explain import explain
    from edgecls.commands.export import export
    from edgecls.commands.info import info
    from edgecls.commands.predict import predict
    from edgecls.commands.serve import serve
    from edgecls.commands.signing import keygen, sign, verify
    from edgecls.commands.stream import stream

    for command in (demo, export, info, predict, evaluate_command, bench, stream, batch, serve, explain, keygen, sign,
                    verify, profile, drift):
        cli.add_command(command)


_register()


# The library names its parameters in messages (EdgeclsError.options); the CLI adds its flags.
FLAGS = {
    "force": "--force", "overwrite": "--force", "unsafe": "--unsafe", "custom_objects": "--custom-objects",
    "input_size": "--input-size", "labels": "--labels", "calibration": "--calib", "validation": "--val",
    "pixels": "--pixels", "mean": "--mean", "std": "--std", "reconnect": "--reconnect",
    "num_threads": "--threads", "max_results": "--top-k", "score_threshold": "--threshold", "backend": "--backend",
    "max_rung": "--max-rung", "max_drop": "--max-drop", "min_agreement": "--min-agreement",
    "resume": "--resume", "engine": "--engine", "head": "--head", "positive": "--positive",
    "thresholds": "--thresholds", "ladder": "--no-ladder",
}


def flag_hint(exc: BaseException) -> str:
    """`` (--force)`` for an error whose message suggests ``force=True``; empty when it suggests none."""
    flags = [FLAGS[name] for name in getattr(exc, "options", ()) if name in FLAGS]
    return f" (command line: {', '.join(dict.fromkeys(flags))})" if flags else ""


_signalled: list[int] = []  # signals received while a command ran


def _on_signal(signum: int, frame: object) -> None:
    """Ctrl-C and SIGTERM unwind the command (temporary files and folders are removed on the way
    out) and are remembered: a library that turns the interruption into another error (TensorFlow's
    converter does) still ends as an interruption, not as that error."""
    _signalled.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


class _OutputClosed(BaseException):
    """Standard output's reader went away. A BaseException, like KeyboardInterrupt, so that it unwinds
    through every ``with`` block (temporary files removed) and no ``except Exception`` swallows it; and not
    an OSError, which click would turn into a silent exit 1."""


class _PipeGuard:
    """Wraps ``sys.stdout``: a write or flush to a closed pipe raises :class:`_OutputClosed`."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise _OutputClosed from None

    def flush(self):
        try:
            return self._stream.flush()
        except BrokenPipeError:
            raise _OutputClosed from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _quiet_opencv(quiet: bool) -> int | None:
    """Keep OpenCV's own "[ WARN ]"/"[ERROR]" lines off stderr (they would come before the one error
    line) unless ``-v``; returns the level to restore (None: nothing changed, e.g. an OpenCV build
    without ``cv2.utils.logging``)."""
    import cv2

    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if not quiet or logging is None:
        return None
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    return level


def _restore_opencv(level: int | None) -> None:
    if level is not None:
        import cv2

        cv2.utils.logging.setLogLevel(level)


def _broken_pipe() -> int:
    """The reader of our output went away (``edgecls predict ... | head -1``): stop quietly, as Unix tools
    do, with 141 (128 + SIGPIPE). Standard output goes to /dev/null so that the interpreter's final flush
    cannot fail once more."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


class _Once(logging.Filter):
    """Lets each message through once per command: a warning about a file is said once, however many images
    or classifiers (a service's pool) meet it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def _log_to_stderr(*, verbose: bool, quiet: bool):
    """Route the library's log to stderr for one command: ``warning: ...`` lines (what was assumed for a
    file: a card ignored, defaults used), with ``-v`` every note as ``edgecls: ...``, with ``-q`` nothing.
    Returns the function that undoes it."""
    logger = logging.getLogger("edgecls")
    handler: logging.Handler = logging.NullHandler() if quiet else logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(levelname_lower)s: %(message)s"))
        handler.addFilter(_Once())
        handler.addFilter(_lower_level)
    previous = logger.level
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.addHandler(handler)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    return undo


def _lower_level(record: logging.LogRecord) -> bool:
    record.levelname_lower = record.levelname.lower()
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 EdgeclsError, 2 usage, 130 Ctrl-C, 141 a closed output
    pipe). SIGTERM unwinds (temporary files removed) and exits with 143."""
    import threading

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    _signalled.clear()
    stdout, sys.stdout = sys.stdout, _PipeGuard(sys.stdout)
    args = sys.argv[1:] if argv is None else list(argv)
    opencv_level = _quiet_opencv(not {"-v", "--verbose"} & set(args))
    logs = _log_to_stderr(verbose=bool({"-v", "--verbose"} & set(args)), quiet=bool({"-q", "--quiet"} & set(args)))
    try:
        return _main(argv)
    finally:
        logs()
        sys.stdout = stdout
        _restore_opencv(opencv_level)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv: Sequence[str] | None) -> int:
    from edgecls.runtime.errors import EdgeclsError, exit_code

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    try:
        from edgecls.runtime.plugins import load_plugins

        load_plugins()  # EDGECLS_PLUGINS: third-party backends, formats, sinks, registered before the command runs
        # without standalone mode click returns ctx.exit()'s code instead of raising Exit
        code = cli.main(args=args, prog_name="edgecls", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except SystemExit as exc:  # raised by _on_signal on SIGTERM
        if _signalled and exc.code == 128 + signal.SIGTERM:
            click.echo("terminated", err=True)
            return 128 + signal.SIGTERM
        raise
    except (_OutputClosed, BrokenPipeError):
        return _broken_pipe()
    except EdgeclsError as exc:
        if _signalled:  # the interruption surfaced as another error inside a library
            click.echo("aborted" if _signalled[0] == signal.SIGINT else "terminated", err=True)
            return 128 + _signalled[0]
        if verbose:
            raise
        from edgecls.commands.text import echo

        echo(f"error: {exc}{flag_hint(exc)}", err=True)
        return exit_code(exc)
    return code if isinstance(code, int) else 0
