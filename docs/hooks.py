"""MkDocs hooks: the package tree the API reference reads, and the benchmark results the pages link to.

The repository keeps ``edgecls.runtime`` in ``runtime/`` and ``edgecls.converters`` in ``converters/``
(pyproject's ``package-dir``); mkdocstrings finds packages by folder, so the build links them into one
``edgecls/`` tree under ``.cache/docs-src`` (an ignored folder of the checkout). Pages link the committed
results as ``../benchmarks/results/...`` (right when read on disk or on a forge); the build serves those
files under ``benchmarks/results/`` and points the links there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / ".cache" / "docs-src"
PACKAGE_DIRS = {"edgecls": "edgecls", "edgecls/runtime": "runtime", "edgecls/converters": "converters"}
RESULTS = ROOT / "benchmarks" / "results"


def on_startup(**_) -> None:
    """Link the package into ``.cache/docs-src/edgecls`` as it is installed."""
    shutil.rmtree(TREE, ignore_errors=True)
    package = TREE / "edgecls"
    package.mkdir(parents=True)
    for entry in (ROOT / "edgecls").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for target, source in PACKAGE_DIRS.items():
        if target != "edgecls":
            (TREE / target).symlink_to(ROOT / source)


def on_files(files: Files, config, **_) -> Files:
    """Serve every committed benchmark result beside the pages."""
    for path in sorted(RESULTS.iterdir()):
        if path.is_file():
            files.append(File(f"benchmarks/results/{path.name}", src_dir=str(ROOT),
                              dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, **_) -> str:
    """Links to ``../benchmarks/`` (the repository's) point at the copies the build serves."""
    return markdown.replace("](../benchmarks/", "](benchmarks/")
