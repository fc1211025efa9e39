"""Locate the separate MediaPipe virtual environment (mediapipe pins its own OpenCV).

``.ci/run`` creates it at ``.cache/mediapipe-venv``; ``EDGECLS_MEDIAPIPE_PYTHON``
points elsewhere. Outside CI a missing environment skips the test; in CI it fails.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from side_envs import venv_python

CLASSIFY = """
import json, sys
import mediapipe as mp
from mediapipe.tasks import python as mpt
from mediapipe.tasks.python import vision
out = {}
for model in sys.argv[2:]:
    options = vision.ImageClassifierOptions(base_options=mpt.BaseOptions(model_asset_path=model), max_results=3)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        result = classifier.classify(mp.Image.create_from_file(sys.argv[1]))
        out[model] = [[c.category_name, c.score] for c in result.classifications[0].categories]
print(json.dumps(out))
"""


def mediapipe_python() -> Path:
    return venv_python("mediapipe-venv", "tests/setup_mediapipe.sh", "EDGECLS_MEDIAPIPE_PYTHON")


def mediapipe_classify(image: Path, models: list[Path]) -> dict[str, list]:
    """Top-3 [label, score] per model from MediaPipe Tasks' ImageClassifier."""
    proc = subprocess.run([str(mediapipe_python()), "-c", CLASSIFY, str(image), *map(str, models)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


TOP1 = """
import json, sys
import mediapipe as mp
from mediapipe.tasks import python as mpt
from mediapipe.tasks.python import vision
options = vision.ImageClassifierOptions(base_options=mpt.BaseOptions(model_asset_path=sys.argv[1]), max_results=1)
with vision.ImageClassifier.create_from_options(options) as classifier:
    out = []
    for image in sys.argv[2:]:
        top = classifier.classify(mp.Image.create_from_file(image)).classifications[0].categories[0]
        out.append([top.category_name, top.score])
print(json.dumps(out))
"""


def mediapipe_top1(images: list[Path], model: Path) -> list[list]:
    """MediaPipe Tasks' top [label, score] for each of ``images`` with ``model``, in one process."""
    proc = subprocess.run([str(mediapipe_python()), "-c", TOP1, str(model), *map(str, images)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


REGIONS = """
import json, sys
import mediapipe as mp
from mediapipe.tasks import python as mpt
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.components.containers.rect import RectF
from mediapipe.tasks.python.vision.core.image_processing_options import ImageProcessingOptions
jobs = json.loads(open(sys.argv[2]).read())
options = vision.ImageClassifierOptions(base_options=mpt.BaseOptions(model_asset_path=sys.argv[1]), max_results=1)
out = []
with vision.ImageClassifier.create_from_options(options) as classifier:
    for image, rects in jobs:
        picture = mp.Image.create_from_file(image)
        for left, top, right, bottom in rects:
            roi = ImageProcessingOptions(region_of_interest=RectF(left=left, top=top, right=right, bottom=bottom))
            out.append(classifier.classify(picture, roi).classifications[0].categories[0].category_name)
print(json.dumps(out))
"""


def mediapipe_regions(model: Path, jobs: list[tuple[Path, list[tuple[float, float, float, float]]]],
                      work: Path) -> list[str]:
    """MediaPipe Tasks' top label for each normalized ``(left, top, right, bottom)`` region of each image
    (``region_of_interest``), in order, in one process."""
    spec = work / "mediapipe-regions.json"
    spec.write_text(json.dumps([[str(image), rects] for image, rects in jobs]))
    proc = subprocess.run([str(mediapipe_python()), "-c", REGIONS, str(model), str(spec)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
