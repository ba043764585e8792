"""The MAF paper's GAS experiment with scikit-learn tools.

Run:  python examples/gas_experiment.py [path/to/ethylene_CO.txt]

Without a path it uses the fetch_gas() cache, else the gas sensor drift data in
../shared/data, else a bundled scikit-learn data set, and says which.
"""

import sys

import matplotlib

matplotlib.use("Agg")

from skflow.experiments import run_gas_experiment  # noqa: E402
from skflow.plotting import plot_training_history  # noqa: E402

if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else None
    results = run_gas_experiment(path, output="results/gas_maf.joblib")
    import joblib

    pipe = joblib.load(results["model_path"])
    ax = plot_training_history(pipe)
    ax.set_title(f"GAS: MAF({pipe[-1].n_flows}) training history")
    ax.figure.savefig("results/gas_training_history.png", dpi=120, bbox_inches="tight")
    print("saved results/gas_training_history.png")
