"""Real data and real models, without downloads: what the demo, the tests and the benchmarks are built from.

- ``digits_rgb``: scikit-learn's bundled handwritten digits as RGB images at any size.
- ``seed_cnn``: the seed project's small CNN.
- ``warm_batchnorm``: BatchNorm statistics from real images for a randomly initialised model
  (Keras Applications with ``weights=None``), so its scores have real margins.
- ``write_digits``: images as a class-folder tree, the layout ``eval``, ``--calib`` and ``--val`` read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["LABELS", "digits_rgb", "seed_cnn", "warm_batchnorm", "write_digits"]

LABELS = tuple(str(i) for i in range(10))


def digits_rgb(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's real handwritten digits as (N, size, size, 3) uint8 RGB images and labels."""
    import cv2
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images * (255.0 / 16.0)).astype(np.uint8)
    big = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_CUBIC) for im in images])
    return np.repeat(big[..., None], 3, axis=-1), data.target.astype(np.int64)


def seed_cnn():
    """The seed's CNN: Conv2D 32 → MaxPool → Conv2D 64 → MaxPool → Flatten → Dense 128 → Dense 10 softmax."""
    import keras

    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(32, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(64, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def write_digits(root: Path, images: np.ndarray, labels: np.ndarray, names: tuple[str, ...] = LABELS) -> Path:
    """Write RGB images as PNG files into ``root/<name of the label>/`` (``names``: the folder of each label
    index; the digits by default).

    Raises:
        OSError: a folder cannot be made or a file cannot be written (OpenCV only returns False).
    """
    import cv2

    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:05d}.png"
        if not cv2.imwrite(str(path), image[:, :, ::-1]):
            raise OSError(f"cannot write {path}")
    return root


def warm_batchnorm(model, images: np.ndarray) -> None:
    """Set a randomly initialised model's BatchNorm statistics from real images (Keras 3 or tf_keras).

    Fresh ``weights=None`` Keras Applications have unit moving statistics, which collapses their
    outputs to near-uniform scores; one pass in training mode with momentum 0 gives them realistic
    activations. ``images`` are what the model takes (already normalized as it was trained).
    """
    layers = [layer for layer in model._flatten_layers() if type(layer).__name__ == "BatchNormalization"]
    for layer in layers:
        layer.momentum = 0.0
    model(np.asarray(images, "float32"), training=True)
    for layer in layers:
        layer.momentum = 0.99


def with_outlier_channels(model, scale: float = 300.0) -> None:
    """In place: scale two output channels of the first convolution up and the second convolution's matching input
    weights down: the same function in float (ReLU and max pooling commute with a positive scale), one
    tensor whose range two channels set, the activation outlier that costs real models their int8 accuracy."""
    import keras

    conv1, conv2 = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][:2]
    (k1, b1), (k2, b2) = conv1.get_weights(), conv2.get_weights()
    for channel in (0, 1):
        k1[..., channel] *= scale
        b1[channel] *= scale
        k2[:, :, channel, :] /= scale
    conv1.set_weights([k1, b1])
    conv2.set_weights([k2, b2])
