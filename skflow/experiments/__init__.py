"""Experiments and workflows built on skflow's public API, apart from the library:
the MAF paper's GAS density experiment (:mod:`~skflow.experiments.gas`), the
spoken-word outlier workflow (:mod:`~skflow.experiments.spoken_words`) and the
two-moons demo (:mod:`~skflow.experiments.demo`).  The command line runs them
(``skflow gas``, ``skflow audio-outliers``, ``skflow demo``)."""

from .gas import GAS_MAF_PARAMS, load_experiment_data, make_gas_pipeline, run_gas_experiment
from .spoken_words import make_detectors, run_audio_outliers

__all__ = ["GAS_MAF_PARAMS", "load_experiment_data", "make_detectors", "make_gas_pipeline",
           "run_audio_outliers", "run_gas_experiment"]
