"""Data loaders: the GAS data of the MAF paper and related real data sets."""

from ._base import find_shared_data, get_data_home
from ._drift import load_gas_drift
from ._gas import (
    ETHYLENE_CO_COLUMNS,
    GAS_DISCRETE_COLUMNS,
    fetch_gas,
    gas_cache_path,
    gas_paper_split,
    load_gas,
    read_ethylene_co,
)
from ._speech import load_speech_commands, speaker_split

__all__ = [
    "ETHYLENE_CO_COLUMNS",
    "GAS_DISCRETE_COLUMNS",
    "fetch_gas",
    "gas_cache_path",
    "find_shared_data",
    "gas_paper_split",
    "get_data_home",
    "load_gas",
    "load_gas_drift",
    "load_speech_commands",
    "read_ethylene_co",
    "speaker_split",
]
