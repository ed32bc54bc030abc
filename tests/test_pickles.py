"""Reading torch.save files without running them: the global scan, the tensor allow-list, torch's refusal text."""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict

import pytest
import torch

from virnucpro_core.pickles import (
    PickledObject,
    is_tensor_global,
    load_failure,
    load_weights_only,
    pickled_globals,
)


class Named:
    """Pickles as a call of ``module.name`` (whatever it is), which the scan must report and never make."""

    def __init__(self, target) -> None:
        self.target = target

    def __reduce__(self):
        return (self.target, ("never called",))


class PickledThing(PickledObject):
    pickled_name = "somewhere.Thing"


def test_a_tensor_checkpoint_names_only_tensor_globals(tmp_path):
    torch.save({"w": torch.zeros(2, dtype=torch.float16), "p": torch.nn.Parameter(torch.ones(1)),
                "o": OrderedDict(a=torch.ones(1)), "s": {1, 2}}, tmp_path / "t.pt")  # fmt: skip
    names, is_zip = pickled_globals(tmp_path / "t.pt")
    assert is_zip and names and all(is_tensor_global(name) for name in names), names
    assert {"collections.OrderedDict", "torch._utils._rebuild_parameter", "builtins.set"} <= set(names), names


@pytest.mark.parametrize("protocol", [2, 4], ids=["GLOBAL", "STACK_GLOBAL"])
@pytest.mark.parametrize(
    ("target", "name"),
    [(eval, "builtins.eval"), (print, "builtins.print"), (torch.load, "torch.serialization.load")],
    ids=["eval", "print", "torch.load"],
)
def test_the_scan_names_a_call_in_python3_terms(tmp_path, protocol, target, name):
    torch.save({"x": Named(target)}, tmp_path / "t.pt", pickle_protocol=protocol)
    names, _ = pickled_globals(tmp_path / "t.pt")
    assert name in names and not is_tensor_global(name), names


def test_a_plain_pickle_is_scanned_too(tmp_path):
    (tmp_path / "p.pkl").write_bytes(pickle.dumps([Named(eval)], protocol=2))
    assert pickled_globals(tmp_path / "p.pkl") == (["builtins.eval"], False)


@pytest.mark.parametrize(
    ("name", "allowed"),
    [("torch.float32", True), ("torch.BFloat16Storage", True), ("torch._utils._rebuild_tensor_v2", True),
     ("torch.load", False), ("torch.hub.load", False), ("torch._utils.get_device_index", False),
     ("builtins.set", True), ("builtins.getattr", False), ("posix.system", False)],
)
def test_only_what_torch_save_writes_for_tensors_counts_as_tensor_globals(name, allowed):
    assert is_tensor_global(name) is allowed


def test_placeholders_keep_the_state_and_run_nothing(tmp_path, monkeypatch):
    calls = []

    class Thing:
        def __setstate__(self, state):  # would run if the real class were used
            calls.append(state)

    module = types.ModuleType("somewhere")
    Thing.__module__, Thing.__qualname__, module.Thing = "somewhere", "Thing", Thing
    monkeypatch.setitem(sys.modules, "somewhere", module)  # importable only while saving
    thing = Thing.__new__(Thing)
    thing.__dict__.update(size=3, weight=torch.ones(2))
    torch.save({"thing": thing}, tmp_path / "t.pt")
    monkeypatch.delitem(sys.modules, "somewhere")
    assert "somewhere.Thing" in pickled_globals(tmp_path / "t.pt")[0]
    loaded = load_weights_only(tmp_path / "t.pt", [PickledThing])["thing"]
    assert isinstance(loaded, PickledThing) and loaded.attributes["size"] == 3 and not calls
    assert torch.equal(loaded.attributes["weight"], torch.ones(2))
    with pytest.raises(Exception, match="somewhere.Thing"):
        load_weights_only(tmp_path / "t.pt")  # without the placeholder torch refuses the class


def test_torchs_refusal_is_one_line_without_its_advice(tmp_path):
    torch.save(Named(eval), tmp_path / "t.pt")
    with pytest.raises(Exception) as info:
        load_weights_only(tmp_path / "t.pt")
    line = load_failure(info.value)
    assert line.startswith("UnpicklingError: ") and "GLOBAL eval" in line and "\n" not in line, line
    assert "Weights only load failed" not in line, line
