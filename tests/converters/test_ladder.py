"""The quantization ladder's climb, on scripted rungs (no TensorFlow): which rungs it builds, validates
and times, in which order, and what it chooses; plus the budget and the report page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecls.converters.errors import ExportError
from edgecls.converters.ladder import Budget, Ladder, LayerError, Rung, climb
from edgecls.converters.validate import Validation

LAYERS = [f"layer{i}" for i in range(10)]


class Script:
    """Rungs that return their own description as bytes; validation and timing read it back."""

    def __init__(self, agreement, ms, float_needed=None, fail=()):
        self.agreement, self.ms, self.float_needed, self.fail = agreement, ms, float_needed, set(fail)
        self.built, self.validated, self.timed = [], [], []

    def rung(self, name, kind):
        def build(job, base, layers):
            if name in self.fail:
                raise ExportError(f"{name} cannot be built here")
            self.built.append((name, base, tuple(layers)))
            return json.dumps([name, list(layers)]).encode()

        return Rung(name, kind, build)

    def evaluate(self, data):
        name, layers = json.loads(data)
        self.validated.append((name, len(layers)))
        if name == "int8+float":
            agreement = 0.99 if self.float_needed is not None and len(layers) >= self.float_needed else 0.9
        else:
            agreement = self.agreement[name]
        return Validation(images=100, source="val", top1_agreement=agreement, max_abs_diff=0.1, mean_abs_diff=0.01,
                          accuracy=0.9 - (1 - agreement), keras_accuracy=0.9)

    def time_files(self, datas):
        names = [json.loads(data)[0] for data in datas]
        self.timed.append(names[0])
        return [self.ms.get(name, 1.0) for name in names]

    def ladder(self):
        rungs = (self.rung("int8", "int8"), self.rung("int8 per-channel", "int8"),
                 self.rung("int8+float", "selective"), self.rung("int16", "int16"),
                 self.rung("fp16", "float"), self.rung("fp32", "float"))
        ranked = [LayerError(name, "CONV", 10 - i, "test") for i, name in enumerate(LAYERS)]
        return Ladder("test", rungs, lambda job, base: ranked)


BUDGET = Budget(min_agreement=0.98)
AGREEMENT = {"int8": 0.9, "int8 per-channel": 0.95, "int16": 0.99, "fp16": 1.0, "fp32": 1.0}
MS = {"int8": 1.0, "int8 per-channel": 1.2, "int8+float": 1.5, "int16": 5.0, "fp16": 3.5, "fp32": 3.0}


def run(script, **kwargs):
    return climb(script.ladder(), job=None, budget=BUDGET, evaluate=script.evaluate, time_files=script.time_files,
                 **kwargs)


def test_full_int8_within_budget_costs_one_validation_and_one_timing():
    script = Script({**AGREEMENT, "int8": 0.99}, MS)
    result = run(script)
    assert result.chosen.rung == "int8" and script.validated == [("int8", 0)]
    assert [b[0] for b in script.built] == ["int8", "fp32"] and script.timed == ["int8"]  # timed beside fp32
    assert result.chosen.vs_fp32 == pytest.approx(1 / 3) and "full int8 (int8) is within budget" in result.reason


def test_without_timing_full_int8_within_budget_costs_one_validation_and_nothing_else():
    script = Script({**AGREEMENT, "int8": 0.99}, MS)
    result = climb(script.ladder(), job=None, budget=BUDGET, evaluate=script.evaluate, time_files=None)
    assert result.chosen.rung == "int8" and script.built == [("int8", "int8", ())] and script.timed == []


def test_full_int8_slower_than_fp32_gives_way_to_a_float_file():
    """MobileNetV3Small's int8 TFLite file ran in 3x its fp32 file's time here: within budget, not the fastest."""
    script = Script({**AGREEMENT, "int8": 0.99}, {**MS, "int8": 9.0})
    result = run(script)
    assert result.chosen.rung == "fp16" and "slower than fp32 here" in result.reason
    assert "within budget, but runs 3.00x fp32's time" in result.candidates[0].note
    assert not any(name in ("int8+float", "int16") for name, *_ in script.built)
    assert script.timed[:2] == ["int8", "int8"]  # a slow reading is confirmed in a second process first


def test_a_slow_reading_that_a_second_timing_does_not_confirm_does_not_count():
    script = Script({**AGREEMENT, "int8": 0.99}, MS)
    readings = iter([9.0, 1.0])
    slow_once = script.time_files

    def time_files(datas):
        ms = slow_once(datas)
        return [next(readings, ms[0]), *ms[1:]] if json.loads(datas[0])[0] == "int8" else ms

    result = climb(script.ladder(), job=None, budget=BUDGET, evaluate=script.evaluate, time_files=time_files)
    assert result.chosen.rung == "int8" and result.chosen.vs_fp32 == pytest.approx(1 / 3)


def test_a_later_calibration_variant_that_holds_is_chosen_and_timed():
    script = Script({**AGREEMENT, "int8 per-channel": 0.985}, MS)
    result = run(script)
    assert result.chosen.rung == "int8 per-channel" and result.chosen.latency_ms == 1.2
    assert [c.rung for c in result.candidates] == ["int8", "int8 per-channel"]


def test_selective_keeps_the_fewest_worst_layers_in_float_by_doubling_then_bisection():
    script = Script(AGREEMENT, MS, float_needed=3)
    result = run(script)
    assert result.chosen.rung == "int8+float" and result.chosen.float_layers == tuple(LAYERS[:3])
    # 1, 2, 4 float layers (doubling), then 3 (bisection between 2 and 4), on the better int8 variant
    assert [(n, k) for n, k in script.validated if n == "int8+float"] == [("int8+float", 1), ("int8+float", 2),
                                                                          ("int8+float", 4), ("int8+float", 3)]
    assert {base for name, base, _ in script.built if name == "int8+float"} == {"int8 per-channel"}
    assert "the 3 of 10 layers worst by quantization error" in result.reason
    assert result.worst_layers[0].layer == "layer0"


def test_no_float_layers_are_tried_when_the_best_int8_variant_is_not_faster_than_fp32():
    """EfficientNetB0's ONNX int8 (percentile) ran 1.03x fp32 here: nine selective candidates (75 s) could
    only be slower still."""
    script = Script(AGREEMENT, {**MS, "int8 per-channel": 2.95}, float_needed=3)
    result = run(script)
    assert not [b for b in script.built if b[0] == "int8+float"] and result.worst_layers == []
    per_channel = next(c for c in result.candidates if c.rung == "int8 per-channel")
    assert "not tried" in per_channel.note
    assert result.chosen.rung == "fp16"  # int16 (5 ms) is slower than fp32; fp16 (3.5 ms) within 1.25x of it


def test_float_layers_stop_when_agreement_stops_rising():
    script = Script(AGREEMENT, MS)  # selective stays at 0.9 whatever it keeps in float
    result = run(script)
    assert [k for n, k in script.validated if n == "int8+float"] == [1, 2, 4]  # 2 and 4 did not beat 1
    assert "did not rise" in [c for c in result.candidates if c.rung == "int8+float"][-1].note


def test_the_climb_is_reproducible():
    first, second = (run(Script(AGREEMENT, MS, float_needed=5)) for _ in range(2))
    assert first.to_dict() == second.to_dict()


def test_int16_slower_than_fp32_is_never_validated_or_chosen():
    script = Script(AGREEMENT, MS)  # selective never holds: int16 (5 ms) against fp32 (3 ms)
    result = run(script)
    assert ("int16", 0) not in script.validated
    int16 = next(c for c in result.candidates if c.rung == "int16")
    assert "1.67x fp32's time" in int16.note and not int16.within


def test_fp16_much_slower_than_fp32_gives_way_to_fp32():
    script = Script(AGREEMENT, {**MS, "fp16": 3.0 * 1.3})
    result = run(script)
    assert result.chosen.rung == "fp32" and "1.30x fp32's time" in result.candidates[-2].note


def test_fp16_within_budget_and_not_much_slower_is_chosen():
    assert run(Script(AGREEMENT, MS)).chosen.rung == "fp16"  # 3.5 ms is within 1.25 × 3 ms


def test_max_rung_stops_the_climb_and_says_where():
    script = Script(AGREEMENT, MS, float_needed=3)
    result = run(script, max_rung="int8")
    assert result.chosen is None and {n for n, _ in script.validated} == {"int8", "int8 per-channel"}
    assert result.fallback.rung == "int8 per-channel" and result.data is not None  # the most accurate full int8
    assert "no rung up to int8 held the budget" in result.reason and "int8 per-channel" in result.reason


def test_a_rung_that_cannot_be_built_is_passed_over_and_said():
    script = Script({**AGREEMENT, "int8 per-channel": 0.99}, MS, fail={"int8"})
    result = run(script)
    assert result.chosen.rung == "int8 per-channel"
    assert "cannot be built here" in result.candidates[0].note


def test_unknown_max_rung_is_refused():
    with pytest.raises(ExportError, match="max_rung must be one of"):
        run(Script(AGREEMENT, MS), max_rung="int4")


@pytest.mark.parametrize("agreement, accuracy, max_drop, min_agreement, holds", [
    (0.97, 0.895, 0.5, None, True),
    (0.97, 0.89, 0.5, None, False),
    (0.97, 0.899, 0.5, 0.98, False),
    (0.99, 0.899, 0.5, 0.98, True),
])
def test_budget_holds_when_every_part_given_holds(agreement, accuracy, max_drop, min_agreement, holds):
    v = Validation(100, "val", agreement, 0.1, 0.01, accuracy=accuracy, keras_accuracy=0.9)
    assert Budget(max_drop, min_agreement).holds(v) is holds


def test_the_report_page_shows_the_ladder_and_the_warnings(tmp_path):
    from edgecls.converters.quant_report import QuantWarning
    from edgecls.converters.report import CalibrationCheck, ExportedFile, ExportResult

    result = run(Script(AGREEMENT, MS, float_needed=3))
    v = result.chosen.validation
    report = ExportResult("m.keras", "0" * 64, tmp_path, ["a", "b"], None, "val", {}, path=tmp_path / "m_report.json",
                          quantization=CalibrationCheck(None, [QuantWarning("one_class_calibration",
                                                                            "all of one class")]))
    report.files.append(ExportedFile(Path("m_int8.tflite"), "tflite", "int8", 10, v, 0.98, 1.0, ladder=result))
    page = report.to_markdown()
    assert "| m_int8.tflite | int8+float (3 float) |" in page
    assert "**one_class_calibration**: all of one class" in page
    assert "| int8+float | 4 |" in page and "| int8+float | 3 |" in page
