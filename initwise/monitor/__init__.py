"""Training-time tools: dead-unit repair (:mod:`initwise.monitor.repair`)."""

from initwise.monitor.repair import Repair, RepairEvent, dormant_units, repair_units, unit_scores

__all__ = ["Repair", "RepairEvent", "dormant_units", "repair_units", "unit_scores"]
