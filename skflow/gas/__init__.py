"""The GAS density experiment of the MAF paper: preprocessing pipeline, data, run."""

from .experiment import GAS_MAF_PARAMS, load_experiment_data, make_gas_pipeline, run_gas_experiment

__all__ = ["GAS_MAF_PARAMS", "load_experiment_data", "make_gas_pipeline", "run_gas_experiment"]
