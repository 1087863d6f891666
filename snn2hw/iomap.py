"""How the host talks to a compiled program: the io map.

Hardware holds neurons in its own order and runs each population ``offset`` steps behind
the float reference (one step per synaptic hop). The compiler records, per input port,
which NIR index each port position holds, and per output and population its program
groups, their NIR indices and offset; the program image carries it as JSON in
``metadata["snn2hw.io"]`` (:data:`IO_KEY`). These frozen types are that record:
:class:`IoMap` for the Loihi family (backends/image.py writes it), :class:`XyloIoMap`
for Xylo programs (xylo/compile.py). :class:`AlignedResult` is a run's result read
through one (snn2hw.execute, snn2hw.xylo.execute). ``to_json`` writes exactly the text earlier
versions wrote (key order included), so program images stay byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from snn2hw_emulator.cost import CostReport
from snn2hw_emulator.program import Program
from snn2hw_emulator.result import RunResult
from snn2hw_emulator.xylo_program import XyloProgram

from snn2hw.errors import UserInputError

IO_KEY = "snn2hw.io"

__all__ = ["IO_KEY", "AlignedResult", "IoMap", "Output", "Population", "XyloIoMap",
           "XyloOutput", "XyloPopulation", "read", "read_json"]


@dataclass(frozen=True)
class Population:
    """A model population on the program: its groups (in order), the NIR index of each of
    their neurons (groups concatenated), and how many steps it runs behind the reference.
    ``payload_scale`` (sigma-delta layers from NIR): each group's payload units per
    reference unit."""

    groups: tuple[str, ...]
    index: tuple[int, ...]
    offset: int
    payload_scale: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"groups": list(self.groups), "index": list(self.index),
                               "offset": self.offset}
        if self.payload_scale is not None:
            out["payload_scale"] = list(self.payload_scale)
        return out


@dataclass(frozen=True)
class Output:
    """An output node: its population, as :class:`Population`, and for a readout (a
    non-spiking integrator whose voltage is read) each group's scale."""

    population: str
    groups: tuple[str, ...]
    index: tuple[int, ...]
    scale: tuple[float, ...]
    readout: bool
    offset: int
    payload_scale: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"population": self.population, "groups": list(self.groups),
                               "index": list(self.index), "scale": list(self.scale),
                               "readout": self.readout, "offset": self.offset}
        if self.payload_scale is not None:
            out["payload_scale"] = list(self.payload_scale)
        return out


@dataclass(frozen=True)
class IoMap:
    """A Loihi-family program's io map: ``ports`` (port -> NIR index of each position),
    ``outputs``, ``populations`` (the model's, not compiler-made sources) and ``latency``
    (the largest offset: a run is that many steps longer than its input)."""

    ports: Mapping[str, tuple[int, ...]]
    outputs: Mapping[str, Output]
    populations: Mapping[str, Population]
    latency: int

    def to_json(self) -> str:
        return json.dumps({"ports": {k: list(v) for k, v in self.ports.items()},
                           "outputs": {k: o.to_dict() for k, o in self.outputs.items()},
                           "populations": {k: p.to_dict() for k, p in
                                           self.populations.items()},
                           "latency": self.latency})

    @classmethod
    def from_json(cls, text: str) -> IoMap:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IoMap:
        return cls(ports={k: tuple(v) for k, v in d["ports"].items()},
                   outputs={k: Output(o["population"], tuple(o["groups"]), tuple(o["index"]),
                                      tuple(o["scale"]), bool(o["readout"]), int(o["offset"]),
                                      _scales(o)) for k, o in d["outputs"].items()},
                   populations={k: Population(tuple(p["groups"]), tuple(p["index"]),
                                              int(p["offset"]), _scales(p))
                                for k, p in d["populations"].items()},
                   latency=int(d["latency"]))

    @property
    def readout(self) -> bool:
        """Some output is read as a voltage (a readout), not as spikes."""
        return any(o.readout for o in self.outputs.values())


def _scales(d: dict[str, Any]) -> tuple[float, ...] | None:
    return tuple(d["payload_scale"]) if "payload_scale" in d else None


@dataclass(frozen=True)
class XyloPopulation:
    """A population of a Xylo program: its group ("hidden" or "output"), its hardware
    rows (in NIR order) and offset."""

    group: str
    rows: tuple[int, ...]
    offset: int


@dataclass(frozen=True)
class XyloOutput:
    population: str
    readout: bool
    offset: int


@dataclass(frozen=True)
class XyloIoMap:
    """A Xylo program's io map: its one input port's channels (NIR order), outputs,
    populations, latency, and the family and dt it was compiled with."""

    dt: float
    ports: Mapping[str, tuple[int, ...]]
    outputs: Mapping[str, XyloOutput]
    populations: Mapping[str, XyloPopulation]
    latency: int
    family: str = "xylo-iaf"

    def to_json(self) -> str:
        return json.dumps({"family": self.family, "dt": self.dt,
                           "ports": {k: list(v) for k, v in self.ports.items()},
                           "outputs": {k: {"population": o.population, "readout": o.readout,
                                           "offset": o.offset}
                                       for k, o in self.outputs.items()},
                           "populations": {k: {"group": p.group, "rows": list(p.rows),
                                               "offset": p.offset}
                                           for k, p in self.populations.items()},
                           "latency": self.latency})

    @classmethod
    def from_json(cls, text: str) -> XyloIoMap:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> XyloIoMap:
        return cls(dt=d["dt"], ports={k: tuple(v) for k, v in d["ports"].items()},
                   outputs={k: XyloOutput(o["population"], bool(o["readout"]),
                                          int(o["offset"])) for k, o in d["outputs"].items()},
                   populations={k: XyloPopulation(p["group"], tuple(p["rows"]), int(p["offset"]))
                                for k, p in d["populations"].items()},
                   latency=int(d["latency"]), family=d["family"])


def read(program: Program | XyloProgram) -> IoMap | XyloIoMap:
    """A program's io map, of its family's type (the compiler's: :class:`IoMap`, or
    :class:`XyloIoMap`: its JSON names the family)."""
    d = json.loads(read_json(program.metadata))
    return XyloIoMap.from_dict(d) if d.get("family") == XyloIoMap.family else IoMap.from_dict(d)


def read_json(metadata: Mapping[str, Any]) -> str:
    """The io map's JSON text from a program's metadata, or a one-line error: a program
    not compiled by snn2hw has none."""
    text = metadata.get(IO_KEY)
    if text is None:
        raise UserInputError(f"the program has no '{IO_KEY}' metadata (how model-shaped "
                             "arrays map onto its ports and groups)",
                             hint="Run a program compiled by snn2hw, or run it with "
                                  "`snn2hw run`, which takes the program's own shapes.")
    return str(text)


@dataclass(frozen=True)
class AlignedResult:
    """A run read through the io map: model-shaped and aligned with the float reference
    (step t of each array is the reference's step t)."""

    outputs: dict[str, np.ndarray]               # Output node -> (B, T, n) spikes or readout v
    spikes: dict[str, np.ndarray]                # population -> (B, T, n) in NIR order
    saturation: dict[str, dict[str, int]]
    cost: CostReport | None
    raw: RunResult                               # the device's own result
    ports: dict[str, np.ndarray]                 # what was fed, per port (B, T + latency, n)
