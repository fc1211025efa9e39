"""Property tests: any array or any bytes give a valid result or an EdgeclsError, never another exception."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgecls.runtime import Classifier, EdgeclsError, ModelCard
from edgecls.runtime.errors import CardError
from edgecls.runtime.images import to_pixels

DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64,
                          np.bool_, np.complex64])
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=9))

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def clf(color_model):
    with Classifier.from_path(color_model) as classifier:
        yield classifier


@SETTINGS
@given(array=ARRAYS, transpose=st.booleans())
def test_any_array_gives_a_tensor_or_an_image_error(clf, array, transpose):
    if transpose and array.ndim >= 2:
        array = np.swapaxes(array, 0, 1)  # a non-contiguous view
    try:
        tensor = clf.preprocess(array)
    except EdgeclsError:
        return
    assert tensor.shape == tuple(d or 1 for d in clf.backend.input.shape[1:])
    assert np.isfinite(tensor.astype(np.float64)).all()
    result = clf.classify(array)
    assert 0.0 <= result.top.score <= 1.0


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_any_bytes_decode_or_raise_an_image_error(data):
    try:
        pixels = to_pixels(data)
    except EdgeclsError:
        return
    assert pixels.array.dtype == np.uint8 and pixels.array.ndim == 3


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                       max_size=5),
                    max_leaves=20)
CARD = {"schema_version": 1, "labels": ["a", "b"],
        "input": {"height": 8, "width": 8, "channels": 3, "layout": "NHWC", "dtype": "uint8"},
        "output": {"num_classes": 2, "dtype": "float32"}}


@SETTINGS
@given(data=st.binary(max_size=512) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_card_bytes_parse_or_raise_a_card_error(data):
    try:
        card = ModelCard.from_json(data)
    except CardError:
        return
    # a card that parses is consistent and survives its own serialization
    assert len(card.labels) == card.output.num_classes
    assert ModelCard.from_json(card.to_json()) == card


@SETTINGS
@given(section=st.sampled_from(["input", "output", "labels", "schema_version", "provenance"]), value=JSON)
def test_a_valid_card_with_any_field_replaced(section, value):
    data = json.loads(json.dumps(CARD))
    data[section] = value
    try:
        card = ModelCard.from_json(json.dumps(data))
    except EdgeclsError:
        return
    assert card.to_dict()["labels"] == list(card.labels)
