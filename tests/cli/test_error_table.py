"""One error table (``edgecls.runtime.ERRORS``): every error class has its row, the CLI's exit code and the
service's HTTP status come from it, and the documentation's table (docs/runtime.md) is it."""

from __future__ import annotations

import ast
import asyncio
import importlib
import pkgutil
from pathlib import Path

import click
import pytest

import edgecls
from edgecls.runtime import errors

ROOT = Path(__file__).resolve().parents[2]
KINDS = list(errors.ERRORS)


def _all_error_classes() -> set[type]:
    for package in ("edgecls", "edgecls.runtime", "edgecls.converters"):
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
            if info.name.endswith("__main__") or any(
                    part in info.name for part in ("ray_engine", "tflite_schema", ".formats.", "ladder", "metadata")):
                continue  # modules that import an engine or TensorFlow at import time; they define no error
            importlib.import_module(info.name)
    found, stack = set(), [errors.EdgeclsError]
    while stack:
        cls = stack.pop()
        found.add(cls)
        stack.extend(cls.__subclasses__())
    return {cls for cls in found if cls.__module__.startswith("edgecls")}


def test_every_error_class_has_its_row_and_is_exported():
    listed = {kind.error for kind in KINDS}
    assert _all_error_classes() <= listed, _all_error_classes() - listed
    for kind in KINDS:
        name = kind.error.__name__
        assert getattr(edgecls, name) is kind.error and name in edgecls.runtime.__all__, name
        assert 400 <= kind.http_status < 600 and kind.exit_code == 1 and kind.when


def test_the_readme_error_table_is_the_one_table():
    assert errors.error_table() in (ROOT / "docs" / "runtime.md").read_text()


def test_nothing_raises_a_bare_edgecls_or_runtime_error():
    """A user catches a specific class: no ``raise EdgeclsError(...)`` or ``raise RuntimeError(...)`` in the
    package (a subclass says what went wrong)."""
    offenders = []
    for folder in ("runtime", "converters", "edgecls"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                        getattr(node.exc.func, "id", None) in ("EdgeclsError", "RuntimeError"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


@pytest.fixture(scope="module")
def raising_command():
    """A command that raises the error class named by its argument, from a foreign cause."""
    from edgecls.cli import cli

    @cli.command("raise-for-test", hidden=True)
    @click.argument("name")
    def raise_for_test(name: str) -> None:
        try:
            raise OSError("the foreign cause")
        except OSError as exc:
            raise getattr(errors, name)("test.onnx: what went wrong") from exc

    yield
    cli.commands.pop("raise-for-test")


@pytest.mark.parametrize("kind", KINDS, ids=[k.error.__name__ for k in KINDS])
def test_the_cli_exits_with_the_tables_code_and_shows_the_cause_with_v(raising_command, capsys, kind):
    from edgecls.cli import main

    assert main(["raise-for-test", kind.error.__name__]) == kind.exit_code
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: test.onnx: what went wrong"]
    with pytest.raises(kind.error) as raised:  # -v: the traceback, with its cause chained
        main(["-v", "raise-for-test", kind.error.__name__])
    assert isinstance(raised.value.__cause__, OSError)


@pytest.mark.parametrize("kind", KINDS, ids=[k.error.__name__ for k in KINDS])
def test_the_service_answers_with_the_tables_status(color_model, monkeypatch, kind):
    """A classify request whose classification raises the class: the table's status; a 4xx carries the
    message, a 5xx only the error's kind (its message names files on the server)."""
    httpx = pytest.importorskip("httpx")
    from edgecls.runtime import Classifier
    from edgecls.serve import ModelSet, create_app

    models = ModelSet([("m", color_model)], workers=1, threads=1)

    def fail(self, *args, **kwargs):
        raise kind.error("/srv/models/m.onnx: what went wrong")

    monkeypatch.setattr(Classifier, "classify", fail)
    app = create_app(models)

    async def post():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edgecls") as client:
            return await client.post("/v1/classify", content=b"\x89PNG", headers={"Content-Type": "image/png"})

    try:
        answer = asyncio.run(post())
    finally:
        models.close()
    assert answer.status_code == kind.http_status, answer.text
    if kind.http_status < 500:
        assert "what went wrong" in answer.json()["error"]
    else:
        assert "/srv/models" not in answer.text and kind.error.__name__ in answer.json()["error"]
