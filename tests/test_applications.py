"""Keras Applications architectures (weights=None) export to every format and agree with Keras.

Each model is trained for one epoch on the real digits (64×64) and its BatchNorm
statistics are set from real images, so its scores have real margins and the
agreement figures mean something. Slow: run with ``pytest -m slow`` (CI runs it).
"""

import pytest

import builders

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

SIZE = 64
# Floors on top-1 agreement with Keras. Measured here (one epoch, 64×64): fp16 ≥ 0.985;
# int8 0.935 (TFLite) / 0.875 (ONNX) on MobileNetV2 but 0.76 / 0.75 on EfficientNetB0,
# whose briefly trained scores have small margins. A broken conversion agrees ~0.1.
MIN_AGREEMENT = {"fp32": 1.0, "fp16": 0.97, "dynamic": 0.6, "int8": 0.6}


@pytest.fixture(scope="module")
def digits64():
    return builders.digits_rgb(SIZE)


@pytest.mark.parametrize("name", ["MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "ResNet50"])
def test_application_exports_agree(name, digits64, tmp_path):
    import keras

    from edgecls.converters import export
    from edgecls.runtime import Classifier

    images, labels = digits64
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(SIZE, SIZE, 3), classes=10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(images[:1400].astype("float32"), labels[:1400], epochs=1, batch_size=32, verbose=0)
    builders.warm_batchnorm(model, images[:256])
    val = builders.write_image_folder(tmp_path / "val", images[1400:], labels[1400:])
    report = export(model, tmp_path / "out", name=name, quantize=list(MIN_AGREEMENT), pixels="raw",
                    calibration=images[:200], validation=val, min_agreement=0.0)
    assert len(report.files) == 8
    for f in report.files:
        v = f.validation
        assert v.top1_agreement >= MIN_AGREEMENT[f.quantization], (f.path.name, v)
        if f.quantization == "fp32":
            assert v.max_abs_diff < 1e-4, (f.path.name, v)
        with Classifier.from_path(f.path) as clf:
            assert clf.card.provenance.quantization == f.quantization
            top = clf.classify(images[1400 + 1], color="rgb").top
            assert top is not None and 0.0 <= top.score <= 1.0
    keras_accuracy = report.files[0].validation.keras_accuracy
    assert keras_accuracy > 0.3  # a real (if briefly trained) classifier, not a constant one
