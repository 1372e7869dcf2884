"""An in-process simulator of the Bazhuayu (八爪鱼) OpenAPI, faithful to bazhuayu-api.md."""

from jobstream.simulator.cursor import CursorFault
from jobstream.simulator.faults import Failure
from jobstream.simulator.hostile import KINDS as HOSTILE_KINDS
from jobstream.simulator.options import DEFAULT_TASK_ID, SimulatorConfig
from jobstream.simulator.page_bytes import RawRow
from jobstream.simulator.rows import RowGenerator, RowOptions, RowTruth
from jobstream.simulator.server import SimulatorServer
from jobstream.simulator.state import SimulatorState
from jobstream.simulator.web_app import make_app

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
