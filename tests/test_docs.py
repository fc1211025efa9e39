"""The documentation cannot rot: every Python example under docs/ runs, each as its own script in its
own folder (so what one registers does not leak into the next)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("**/*.md"))
EXAMPLES = [(page.relative_to(ROOT).as_posix(), n, code) for page in PAGES
            for n, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S))]


def test_the_docs_have_examples():
    pages = {page for page, _, _ in EXAMPLES}
    assert {"docs/extending.md", "docs/testing.md"} <= pages


@pytest.mark.parametrize("page,n,code", EXAMPLES, ids=[f"{page}#{n}" for page, n, _ in EXAMPLES])
def test_python_examples(page, n, code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{page} example {n}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{page} example {n} printed nothing"
