"""JSON nested too deep for Python's parser (a RecursionError, not a ValueError) in every file or field a
user or a detector gives: each is refused as the input it is, never a crash or a 500."""

from __future__ import annotations

import json

import pytest

from edgecls.runtime.errors import CardError, RegionError, SignatureError

NESTED = "[" * 100_000


def test_boxes_files_cells_and_feeds_refuse_deep_nesting(tmp_path):
    from edgecls.batch.inputs import boxes_of
    from edgecls.runtime.region_feed import JsonlRegions
    from edgecls.runtime.regions import read_boxes

    path = tmp_path / "boxes.json"
    path.write_text(NESTED)
    with pytest.raises(RegionError, match="not a JSON boxes file"):
        read_boxes(path)
    with pytest.raises(RegionError, match="row 3: the boxes are not JSON"):
        boxes_of(NESTED, "list.csv row 3")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"frame": 0, "boxes": [[0, 0, 5, 5]]}) + "\n" + NESTED + "\n")
    regions = JsonlRegions(feed)
    try:
        assert len(regions(0, 0.0, None)) == 1
        with pytest.raises(RegionError, match="not JSON"):
            regions(1, 40.0, None)
    finally:
        regions.close()


def test_a_signature_and_a_state_file_nested_too_deep_are_refused(tmp_path):
    from edgecls.runtime.signatures import generate_key_pair, load_public_keys, verify_file
    from edgecls.runtime.trust import STATE_FILE, VersionState

    _, public = generate_key_pair(tmp_path / "keys")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3" + bytes(64))
    (tmp_path / "m.tflite.sig").write_text(NESTED)
    with pytest.raises(SignatureError, match="is not a model-signing signature"):
        verify_file(model, load_public_keys([public]))
    (tmp_path / STATE_FILE).write_text(NESTED)
    with pytest.raises(SignatureError, match="accepted-versions file cannot be read"):
        VersionState(tmp_path).read()


def test_a_card_profile_with_impossible_shares_is_refused():
    from edgecls.runtime.profile import Profile

    signal = {"edges": [0.1, 0.2], "shares": [0.5, -0.2, 0.7], "mean": 0.1, "min": 0.0, "max": 0.3}
    with pytest.raises(CardError, match="shares that are not non-negative"):
        Profile.from_dict({"version": 1, "images": 10, "signals": {"brightness": signal}, "classes": []})
    signal["shares"] = [0.5, 0.2, 0.3]
    with pytest.raises(CardError, match="class shares"):
        Profile.from_dict({"version": 1, "images": 10, "signals": {"brightness": signal}, "classes": [float("nan")]})
    assert Profile.from_dict({"version": 1, "images": 10, "signals": {"brightness": signal}, "classes": [1.0]})
    for field, value, message in (("mean", 10**400, "needs edges, shares, mean"), ("max", float("inf"), "not finite"),
                                  ("edges", [0.1, 10**400], "needs edges, shares, mean")):
        bad = {**signal, field: value}
        with pytest.raises(CardError, match=message):
            Profile.from_dict({"version": 1, "images": 10, "signals": {"brightness": bad}, "classes": [1.0]})
    for field, value in (("images", float("inf")), ("classes", [10**400])):
        with pytest.raises(CardError, match="classes must be numbers, images a count"):
            Profile.from_dict({"version": 1, "images": 10, "signals": {}, "classes": [1.0], field: value})
