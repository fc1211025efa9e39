"""Another version of the package, importable side by side with this checkout: a folder whose ``edgecls``
package is a given checkout's, or a given commit's, to put first on ``PYTHONPATH`` of a fresh process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from benchmarks.suite.publish import ROOT

__all__ = ["package_view", "revision_view", "side_envs"]


def package_view(source: Path, work: Path) -> Path:
    """A folder whose ``edgecls`` package is ``source``'s (edgecls/ with runtime/ and converters/ inside)."""
    view = work / "view" / "edgecls"
    view.mkdir(parents=True)
    for item in (source / "edgecls").iterdir():
        (view / item.name).symlink_to(item)
    (view / "runtime").symlink_to(source / "runtime")
    (view / "converters").symlink_to(source / "converters")
    return view.parent


def revision_view(revision: str, work: Path) -> Path:
    """:func:`package_view` of this repository as it was at ``revision`` (its files taken by ``git archive``).

    Raises:
        subprocess.CalledProcessError: ``revision`` is not a commit of this repository.
    """
    source = work / "source"
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", revision, "edgecls", "runtime", "converters"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return package_view(source, work)


def side_envs(before: Path) -> dict[str, dict[str, str]]:
    """The environments of a suite's fresh probe processes: ``before`` (the :func:`revision_view` ``before``
    first on ``PYTHONPATH``) and ``after`` (this checkout). Run the probe as a script, not with ``-m``: that
    would put the working folder, and its ``edgecls``, before ``PYTHONPATH``."""
    from benchmarks.suite.timing import root_env

    env = {"before": root_env(), "after": root_env()}
    env["before"]["PYTHONPATH"] = os.pathsep.join((str(before), env["before"]["PYTHONPATH"]))
    return env
