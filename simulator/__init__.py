"""Traffic simulator, failure scenarios and native-format billing exports: the data half of
the demo (`byok-ledger simulate`) and the production-testing checklist
(`byok-ledger scenarios`)."""

from simulator.run import DEFAULT_START, ROUTER_MAX_PER_DAY, SimulationResult, run_simulation

__all__ = ["DEFAULT_START", "ROUTER_MAX_PER_DAY", "SimulationResult", "run_simulation"]
