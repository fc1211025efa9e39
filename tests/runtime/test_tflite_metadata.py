"""Standard TFLite metadata in exported .tflite files: structure, archive, MediaPipe."""

import zipfile

import cv2
import pytest
from mediapipe_env import mediapipe_classify

from edgecls.converters.metadata import embed_card_file
from edgecls.converters.metadata.tflite_embed import LABELS_FILE_NAME, METADATA_NAME
from edgecls.runtime import Classifier
from edgecls.runtime.card import CARD_FILE_NAME, ModelCard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _metadata_entries(path):
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        entries[entry.Name().decode()] = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
    return entries


def test_flatbuffer_carries_tflite_metadata(seed_exports):
    _, paths, _ = seed_exports
    for key in ("tflite_fp32", "tflite_int8"):
        entries = _metadata_entries(paths[key])
        assert METADATA_NAME in entries
        assert entries[METADATA_NAME][4:8] == b"M001"  # metadata_schema.fbs file identifier
        assert "min_runtime_version" in entries  # the converter's own entry survives


def test_archive_holds_labels_and_card_uncompressed(seed_exports):
    _, paths, _ = seed_exports
    with zipfile.ZipFile(paths["tflite_int8"]) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        assert set(infos) == {LABELS_FILE_NAME, CARD_FILE_NAME}
        assert all(info.compress_type == zipfile.ZIP_STORED for info in infos.values())
        assert archive.read(LABELS_FILE_NAME).decode().split() == [str(i) for i in range(10)]
        card = ModelCard.from_json(archive.read(CARD_FILE_NAME))
    assert card.input.dtype == "uint8"


def test_re_embedding_replaces_instead_of_stacking(seed_exports, tmp_path):
    _, paths, _ = seed_exports
    path = tmp_path / "again.tflite"
    path.write_bytes(paths["tflite_fp32"].read_bytes())
    with zipfile.ZipFile(path) as archive:
        card = ModelCard.from_json(archive.read(CARD_FILE_NAME))
    size = path.stat().st_size
    embed_card_file(path, card)
    assert path.stat().st_size == size
    assert list(_metadata_entries(path)).count(METADATA_NAME) == 1


def test_mediapipe_image_classifier_reads_the_files(seed_exports, tmp_path):
    _, paths, (images, _) = seed_exports
    image_path = tmp_path / "digit.png"
    cv2.imwrite(str(image_path), images[5][:, :, ::-1])
    models = [paths["tflite_fp32"], paths["tflite_int8"]]
    results = mediapipe_classify(image_path, models)
    for model in models:
        with Classifier.from_path(model) as clf:
            ours = clf.classify(image_path, max_results=3).categories
        theirs = results[str(model)]
        assert [label for label, _ in theirs] == [c.label for c in ours]
        assert max(abs(score - c.score) for (_, score), c in zip(theirs, ours, strict=True)) < 0.02
