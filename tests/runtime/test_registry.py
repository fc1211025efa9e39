"""One registry style: backends, formats, ladders, sinks and batch engines refuse a taken name unless
``replace=True``, resolve aliases, and name the choices for an unknown one."""

from dataclasses import replace
from pathlib import Path

import pytest

from edgecls.runtime.errors import ExportError, OptionError, SinkError
from edgecls.runtime.registry import Registry


def test_a_registry_keeps_order_resolves_aliases_and_refuses_taken_names():
    reg = Registry("widget")
    reg.register("a", 1, aliases=("alpha",))
    reg.register("b", 2)
    assert list(reg) == ["a", "b"] and reg.entries() == (1, 2) and len(reg) == 2
    assert reg["alpha"] == 1 and "alpha" in reg and reg.lookup("b") == 2 and reg.get("zzz") is None
    with pytest.raises(OptionError, match="a widget named 'a' is registered already; pass replace=True"):
        reg.register("a", 3)
    with pytest.raises(OptionError, match="'alpha' already names the widget 'a'"):
        reg.register("c", 3, aliases=("alpha",))
    with pytest.raises(OptionError, match="'alpha' is an alias of the widget 'a'"):
        reg.register("alpha", 3)
    with pytest.raises(OptionError, match="unknown widget 'zzz'; choose one of: a, b"):
        reg.lookup("zzz")
    reg.register("a", 10, aliases=("ten",), replace=True)  # the old aliases go with the old entry
    assert reg["a"] == 10 and reg["ten"] == 10 and "alpha" not in reg and list(reg) == ["a", "b"]
    assert reg.unregister("a") == 10 and "ten" not in reg and list(reg) == ["b"]
    with pytest.raises(OptionError, match="no widget named 'a'"):
        reg.unregister("a")
    with pytest.raises(OptionError, match="non-empty name"):
        reg.register("", 0)


def test_every_registry_refuses_to_hide_a_builtin_and_replace_is_explicit():
    from edgecls.batch import get_engine, register_engine
    from edgecls.batch.engines import ENGINES
    from edgecls.converters.formats import FORMATS, register_format
    from edgecls.converters.ladder import LADDERS, get_ladder, register_ladder
    from edgecls.runtime.backends import BACKENDS, register, spec_for
    from edgecls.sinks import SINKS, open_sink, register_sink

    litert = BACKENDS["litert"]
    for call in (lambda: register(litert), lambda: register_format(FORMATS["tflite"]),
                 lambda: register_ladder(get_ladder("onnx")), lambda: register_engine("local", "x:y"),
                 lambda: register_sink("video", SINKS["video"])):
        with pytest.raises(OptionError, match="registered already; pass replace=True"):
            call()
    with pytest.raises(OptionError, match="'tflite' already names the backend 'litert'"):
        register(replace(litert, name="other"))
    with pytest.raises(OptionError, match='"auto" chooses a backend by suffix'):
        register(replace(litert, name="auto"))
    with pytest.raises(OptionError, match="registered as 'module:function'"):
        register_engine("mine", "no_colon")
    with pytest.raises(ExportError, match="unknown format 'coreml'; choose one of: tflite, onnx"):
        FORMATS.lookup("coreml")
    with pytest.raises(SinkError, match="unknown sink 'printer'; choose one of: mqtt, video, window"):
        open_sink("printer", None)
    with pytest.raises(OptionError, match="engine must be one of local, ray"):
        get_engine("dask")
    # replacing is explicit, and putting the built-in back restores it
    register(litert, replace=True)
    assert BACKENDS["tflite"] is litert and spec_for(Path("m.tflite")) is litert
    assert set(LADDERS) == {"tflite", "onnx"} and list(ENGINES) == ["local", "ray"]
