"""initwise.monitor: the doctor's checks while training runs, and dead-unit repair in place.

``mon = initwise.Monitor(model)``; in the loop, ``mon.step(loss=loss, optimizer=opt)`` after
``optimizer.step()``; ``mon.findings`` / ``mon.report()`` at any time; ``state_dict()`` for
checkpoints. See :mod:`initwise.monitor.core` for the two tiers and their cost.
"""

from initwise.monitor.core import MONITOR_CODES, Monitor, MonitorReport, TrainingDiverged
from initwise.monitor.detect import Divergence, DyingUnits, EpochCliff, LossTracker, Plateau, Warmup
from initwise.monitor.repair import Repair, RepairEvent, dormant_units, repair_units, unit_scores
from initwise.monitor.sinks import CSVSink, JSONLinesSink, ProgressLine, Sink, TensorBoardSink

__all__ = [
    "MONITOR_CODES", "CSVSink", "Divergence", "DyingUnits", "EpochCliff", "JSONLinesSink",
    "LossTracker", "Monitor", "MonitorReport", "Plateau", "ProgressLine", "Repair",
    "RepairEvent", "Sink", "TensorBoardSink", "TrainingDiverged", "Warmup", "dormant_units",
    "repair_units", "unit_scores",
]
