"""Real data and real models, without downloads: what the demo, the tests and the benchmarks are built from.

- ``digits_rgb``: scikit-learn's bundled handwritten digits as RGB images at any size.
- ``seed_cnn``: the seed project's small CNN.
- ``warm_batchnorm``: BatchNorm statistics from real images for a randomly initialised model
  (Keras Applications with ``weights=None``), so its scores have real margins.
- ``write_digits``: images as a class-folder tree, the layout ``eval``, ``--calib`` and ``--val`` read.
- ``head_model``: digits models ending in each head users train (logits, binary, multi-label), as the
  tutorials write them.
- ``photo_frame`` and ``pasted_digits``: camera-sized frames of scikit-image's photos with digits pasted at
  known boxes, what a detector would have found (for the regions of a frame).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["LABELS", "digits_rgb", "seed_cnn", "warm_batchnorm", "write_digits", "HEAD_SHAPES", "head_model",
           "ATTRIBUTES", "attribute_matrix", "binary_labels", "PHOTOS", "photo_frame", "pasted_digits"]

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


ATTRIBUTES = ("big", "even", "prime", "round")
"""The multi-label task on digits: which of these a digit is (``big``: 5 or more; ``round``: 0, 6, 8, 9),
in sorted order, as scikit-learn's ``MultiLabelBinarizer`` and a CSV list's labels order them."""


def attribute_matrix(labels: np.ndarray) -> np.ndarray:
    """Each digit's attributes (N × 4 bool), in :data:`ATTRIBUTES` order."""
    digits = np.asarray(labels)
    return np.stack([digits >= 5, digits % 2 == 0, np.isin(digits, (2, 3, 5, 7)), np.isin(digits, (0, 6, 8, 9))], 1)


def binary_labels(labels: np.ndarray) -> np.ndarray:
    """The binary task on digits: 1 for 5 or more (``high``), 0 below (``low``)."""
    return (np.asarray(labels) >= 5).astype(np.int64)


def _cnn(keras, x, width: int, activation: str | None):
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.layers.Dense(width, activation=activation, name="head")(x)


HEAD_SHAPES = ("tutorial-logits", "binary-logit", "transfer-binary", "binary-sigmoid", "softmax-layer",
               "nested-head", "multilabel-sigmoid")


def head_model(shape: str, images: np.ndarray, labels: np.ndarray, epochs: int = 6, seed: int = 0):
    """A digits model ending in one of the heads users train (``HEAD_SHAPES``), written as the tutorials
    write it and trained on raw pixels (its normalization inside):

    - ``tutorial-logits``: TensorFlow's image-classification tutorial: ``Rescaling(1/255)``, a CNN,
      ``Dense(10)``, ``SparseCategoricalCrossentropy(from_logits=True)``;
    - ``binary-logit``: keras.io's binary example: ``Dense(1)``, ``BinaryCrossentropy(from_logits=True)``;
    - ``transfer-binary``: the transfer-learning tutorial: ``preprocess_input`` as ops, a frozen MobileNetV2
      base called with ``training=False`` (alpha 0.35, ``weights=None``, pretrained here on the ten digits
      in ImageNet's place), global pooling, dropout, ``Dense(1)`` logit;
    - ``binary-sigmoid``: ``Dense(1, activation="sigmoid")`` with ``binary_crossentropy``;
    - ``softmax-layer``: a linear ``Dense(10)`` then a ``Softmax`` layer;
    - ``nested-head``: the classifier block (dense, dropout, ``Dense(10, softmax)``) a nested Sequential;
    - ``multilabel-sigmoid``: ``Dense(4, activation="sigmoid")`` on :data:`ATTRIBUTES`.

    Binary shapes learn :func:`binary_labels` (``low``/``high``). The model is compiled with its loss, so a
    saved file keeps it. ``seed`` seeds the weights and the training.
    """
    import keras

    keras.utils.set_random_seed(seed)
    size = images.shape[1]
    inputs = keras.Input((size, size, 3), name="pixels")
    targets = labels
    if shape == "transfer-binary":
        preprocess = keras.applications.mobilenet_v2.preprocess_input
        base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.35, include_top=False,
                                              weights=None)
        pretrain = keras.Sequential([keras.Input((size, size, 3)), base, keras.layers.GlobalAveragePooling2D(),
                                     keras.layers.Dense(10, activation="softmax")])
        pretrain.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
        pretrain.fit(preprocess(images.astype("float32")), labels, epochs=epochs, batch_size=32, verbose=0)
        warm_batchnorm(base, preprocess(images[:700].astype("float32")))  # its moving statistics lag its weights
        base.trainable = False  # pretrained on the ten digits, as on ImageNet; frozen as the tutorial does
        x = base(preprocess(inputs), training=False)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(0.2)(x)
        outputs = keras.layers.Dense(1, name="head")(x)
        loss, targets = keras.losses.BinaryCrossentropy(from_logits=True), binary_labels(labels)
    else:
        x = keras.layers.Rescaling(1.0 / 255, name="rescaling")(inputs)
        if shape == "tutorial-logits":
            outputs = _cnn(keras, x, 10, None)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        elif shape == "binary-logit":
            outputs, loss = _cnn(keras, x, 1, None), keras.losses.BinaryCrossentropy(from_logits=True)
            targets = binary_labels(labels)
        elif shape == "binary-sigmoid":
            outputs, loss, targets = _cnn(keras, x, 1, "sigmoid"), "binary_crossentropy", binary_labels(labels)
        elif shape == "softmax-layer":
            outputs = keras.layers.Softmax(name="probabilities")(_cnn(keras, x, 10, None))
            loss = "sparse_categorical_crossentropy"
        elif shape == "nested-head":
            x = keras.layers.Conv2D(16, 3, activation="relu")(x)
            x = keras.layers.MaxPooling2D()(keras.layers.Conv2D(32, 3, activation="relu")(keras.layers.MaxPooling2D()(x)))
            block = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten(),
                                      keras.layers.Dense(64, activation="relu"), keras.layers.Dropout(0.2),
                                      keras.layers.Dense(10, activation="softmax")], name="classifier")
            outputs, loss = block(x), "sparse_categorical_crossentropy"
        elif shape == "multilabel-sigmoid":
            outputs, loss = _cnn(keras, x, len(ATTRIBUTES), "sigmoid"), "binary_crossentropy"
            targets = attribute_matrix(labels).astype("float32")
        else:
            raise ValueError(shape)
    model = keras.Model(inputs, outputs, name=shape.replace("-", "_"))
    model.compile(keras.optimizers.Adam(2e-3), loss)
    model.fit(images.astype("float32"), targets, epochs=epochs, batch_size=32, verbose=0)
    return model


PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
"""scikit-image's colour photos, the backgrounds of :func:`pasted_digits`' frames."""


def photo_frame(name: str, width: int, height: int) -> np.ndarray:
    """scikit-image's photo ``name`` as a ``width`` × ``height`` BGR frame (resized, aspect not kept)."""
    import cv2
    from skimage import data

    return cv2.resize(getattr(data, name)()[:, :, ::-1], (width, height), interpolation=cv2.INTER_LINEAR)


def _place(rng: np.random.Generator, taken: list, width: int, height: int, w: int, h: int,
           edge: str | None) -> tuple[int, int] | None:
    """A free spot for a ``w`` × ``h`` box (touching ``edge`` when given), or None after 200 tries."""
    for _ in range(200):
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        x = {"left": 0, "right": width - w}.get(edge, x)
        y = {"top": 0, "bottom": height - h}.get(edge, y)
        if all(x + w <= a or b <= x or y + h <= c or d <= y for a, c, b, d in taken):
            return x, y
    return None


def pasted_digits(images: np.ndarray, labels: np.ndarray, *, sizes=((1280, 720), (1920, 1080)), frames: int = 12,
                  per_frame: int = 8, side=(24, 300), aspect=(0.8, 1.25), seed: int = 0):
    """Camera frames with digits pasted at known boxes: ``frames`` frames of each size in ``sizes``, each a
    scikit-image photo with ``per_frame`` digits (from ``images``, RGB) at boxes of ``side`` pixels (their
    width/height ratio within ``aspect``), the first two touching an edge of the frame.

    Returns:
        A list of ``(frame BGR, boxes [(x_min, y_min, x_max, y_max)], labels)``, the digits used in turn.
    """
    import cv2

    rng = np.random.default_rng(seed)
    out, used = [], 0
    for width, height in sizes:
        for f in range(frames):
            frame = photo_frame(PHOTOS[f % len(PHOTOS)], width, height)
            boxes, truths, taken = [], [], []
            for k in range(per_frame):
                h = int(rng.integers(side[0], side[1] + 1))
                w = max(side[0], round(h * rng.uniform(*aspect)))
                spot = _place(rng, taken, width, height, w, h, ("left", "right", "top", "bottom")[(f + k) % 4]
                              if k < 2 else None)
                if spot is None:
                    continue
                x, y = spot
                digit = images[used % len(images)]
                frame[y:y + h, x:x + w] = cv2.resize(digit, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
                boxes.append((x, y, x + w, y + h))
                truths.append(int(labels[used % len(images)]))
                taken.append((x, y, x + w, y + h))
                used += 1
            out.append((frame, boxes, truths))
    return out
