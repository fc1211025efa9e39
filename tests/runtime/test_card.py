"""The model card: JSON round trip and every validation error."""

import json

import pytest
from builders import card_for

from edgecls.runtime.card import CARD_SCHEMA_VERSION, ModelCard, Provenance, Quantization
from edgecls.runtime.errors import CardError


def full_card() -> ModelCard:
    card = card_for(["cat", "dog", "bird"], size=96, dtype="uint8", quant=Quantization(0.5, 3))
    return ModelCard(
        labels=card.labels, input=card.input, output=card.output, name="pets",
        provenance=Provenance(edgecls_version="0.1.0", source_file="pets.h5", source_sha256="ab" * 32,
                              format="tflite", quantization="int8",
                              calibration={"images": 200, "source": "calib/"},
                              validation={"top1_agreement": 0.995, "images": 400}),
    )


def test_round_trip_json_is_equal():
    card = full_card()
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert again.to_dict() == card.to_dict()
    assert json.loads(card.to_json())["schema_version"] == CARD_SCHEMA_VERSION


def test_round_trip_through_both_model_formats(seed_exports):
    from edgecls.runtime import Classifier

    _, paths, _ = seed_exports
    for path in paths.values():
        with Classifier.from_path(path) as clf:
            assert clf.has_card
            assert clf.card.labels == tuple(str(i) for i in range(10))
            assert clf.card.provenance.format == path.suffix[1:]


def _broken(**changes):
    data = full_card().to_dict()
    for dotted, value in changes.items():
        target = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[leaf]
        else:
            target[leaf] = value
    return data


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"schema_version": 99}, "schema_version 99 is not supported"),
        ({"labels": KeyError}, "needs 'labels', 'input' and 'output'"),
        ({"input": "x"}, "must be objects"),
        ({"input__layout": "NWHC"}, "'input.layout' is 'NWHC'"),
        ({"input__color": "hsv"}, "'input.color'"),
        ({"input__resize": "zoom"}, "'input.resize'"),
        ({"input__dtype": "int64"}, "'input.dtype'"),
        ({"input__height": 0}, "'input.height' must be a positive integer"),
        ({"input__channels": 4}, "'input.channels' must be 1 or 3"),
        ({"input__quantization": {"scale": 0, "zero_point": 0}}, "non-positive scale"),
        ({"input__quantization": {"scale": 1}}, "needs numeric 'scale' and 'zero_point'"),
        ({"input__normalization": {"baked": False, "mean": [0], "std": [0]}}, "must not contain 0"),
        ({"input__normalization": {"baked": False, "mean": "abc"}}, "must be a list of numbers"),
        ({"input__normalization": {"baked": False, "mean": [10**400], "std": [1]}}, "must hold finite numbers"),
        ({"input__normalization": {"baked": False, "mean": [0], "std": [-10**400]}}, "must hold finite numbers"),
        ({"input__quantization": {"scale": 10**400, "zero_point": 0}}, "needs numeric 'scale' and 'zero_point'"),
        ({"input__quantization": {"scale": 0.5, "zero_point": float("inf")}}, "needs numeric 'scale'"),
        ({"input__quantization": {"scale": 0.5, "zero_point": 2**40}}, "zero_point outside 32-bit integers"),
        ({"output__num_classes": 4}, "3 labels but output.num_classes is 4"),
        ({"output__scores": "odds"}, "'output.scores'"),
        ({"provenance__validation": [1, 2]}, "'provenance.validation' must be an object"),
    ],
)
def test_malformed_cards_raise_card_error(changes, message):
    with pytest.raises(CardError, match=message):
        ModelCard.from_dict(_broken(**changes))


def test_not_json_and_not_object():
    with pytest.raises(CardError, match="not valid JSON"):
        ModelCard.from_json("{nope")
    with pytest.raises(CardError, match="must be a JSON object"):
        ModelCard.from_json("[1, 2]")
