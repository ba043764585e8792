"""The ``skflow`` command line."""

from __future__ import annotations

import argparse
import sys


def _gas(args) -> int:
    from .gas import run_gas_experiment

    overrides = {}
    if args.max_iter is not None:
        overrides["max_iter"] = args.max_iter
    if args.n_flows is not None:
        overrides["n_flows"] = args.n_flows
    run_gas_experiment(
        args.data,
        output=args.output,
        data_home=args.data_home,
        download=args.download,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
        device=args.device,
        **overrides,
    )
    return 0


def _audio(args) -> int:
    from .speech import run_audio_outliers

    run_audio_outliers(args.data, args.target, features=args.features,
                       random_state=args.random_state, plot=args.plot)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skflow", description="Normalizing-flow density estimation with scikit-learn."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gas = sub.add_parser(
        "gas",
        help="the MAF paper's GAS density experiment",
        description=(
            "Drop time and concentrations, filter correlated columns, standardise, fit "
            "MAF(10) with the paper's settings; print the Gaussian baseline and the "
            "flow's test log-likelihood; save the fitted pipeline. Data: --data PATH, "
            "else the fetch_gas() cache (--download fills it), else the gas drift data "
            "in ../shared/data, else a bundled scikit-learn data set; the output says which."
        ),
    )
    gas.add_argument("--data", help="path of ethylene_CO.txt (UCI format) or a cached .npy")
    gas.add_argument("--download", action="store_true", help="download the UCI archive first")
    gas.add_argument("--data-home", help="cache folder (default $SKFLOW_DATA or ~/skflow_data)")
    gas.add_argument("--output", default="results/gas_maf.joblib", help="where to save the pipeline")
    gas.add_argument("--max-iter", type=int, help="maximum epochs (paper: until patience runs out)")
    gas.add_argument("--n-flows", type=int, help="number of MAF layers (paper: 10)")
    gas.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    gas.add_argument("--random-state", type=int, default=0)
    gas.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    gas.set_defaults(func=_gas)

    audio = sub.add_parser(
        "audio-outliers",
        help="train on one spoken word, flag the others",
        description=(
            "Fit MAFOutlierDetector and scikit-learn's detectors on one word's clips of a "
            "Speech-Commands-style folder (speaker-disjoint hold-out) and print, for every "
            "other word and silence, the MAF mean log-likelihood rank and each detector's "
            "ROC AUC."
        ),
    )
    audio.add_argument("--data", required=True, help="folder with one sub-folder per word")
    audio.add_argument("--target", default="yes", help="the word to train on")
    audio.add_argument("--features", choices=["mel", "spectrum"], default="mel")
    audio.add_argument("--plot", default="results/audio_scores.png", help="score histogram path")
    audio.add_argument("--random-state", type=int, default=0)
    audio.set_defaults(func=_audio)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, OSError, ValueError) as exc:
        print(f"skflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
