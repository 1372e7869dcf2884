"""An in-process simulator of the Bazhuayu (八爪鱼) OpenAPI, faithful to bazhuayu-api.md."""

from jobstream.simulator.app import make_app
from jobstream.simulator.body import RawRow
from jobstream.simulator.config import DEFAULT_TASK_ID, SimulatorConfig
from jobstream.simulator.cursor import CursorFault
from jobstream.simulator.faults import Failure
from jobstream.simulator.hostile import KINDS as HOSTILE_KINDS
from jobstream.simulator.rows import RowGenerator, RowOptions, RowTruth
from jobstream.simulator.server import SimulatorServer
from jobstream.simulator.state import SimulatorState

__all__ = [
    "DEFAULT_TASK_ID",
    "HOSTILE_KINDS",
    "CursorFault",
    "Failure",
    "RawRow",
    "RowGenerator",
    "RowOptions",
    "RowTruth",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorState",
    "make_app",
]
