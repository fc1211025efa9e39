"""The documentation builds (``mkdocs build --strict``: no broken link, no page outside the nav, every API
reference entry found), the README stays short, and the pages hold the worked examples the issue asked
for. (tests/project/test_readme.py runs every command and example of the README and of these pages.)"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAV = re.findall(r"^  - [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)


def test_the_readme_is_short_and_every_page_is_in_the_nav():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").glob("**/*.md"))
    assert sorted(NAV) == pages
    for page in NAV:  # each README link to a page names one that exists
        assert (ROOT / "docs" / page).read_text().startswith("# "), page
    for link in re.findall(r"\]\((docs/[^)#]+)", (ROOT / "README.md").read_text()):
        assert (ROOT / link).is_file(), link


def test_the_worked_examples_are_there():
    extending = (ROOT / "docs" / "extending.md").read_text()
    testing = (ROOT / "docs" / "testing.md").read_text()
    assert "register(BackendSpec(" in extending and "Classifier.from_path(\"digits.npz\")" in extending
    assert "FakeBackend(" in testing and "fail_at=" in testing and "InferenceError" in testing


def test_mkdocs_build_strict(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=None)
    assert done.returncode == 0, done.stderr[-4000:]
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    for name in ("from_backend", "classify_batch", "FakeBackend", "Registry", "ExportOptions"):
        assert name in reference, name
    assert (tmp_path / "site" / "benchmarks" / "results" / "heads-2026-12-04").is_dir()
