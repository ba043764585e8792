"""The ``skflow`` command line."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from ._version import __version__
from .io import load_model, read_frame, read_table, save_model, to_stdout, write_frame, write_table


def _gas(args) -> int:
    from .experiments.gas import run_gas_experiment

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
    from .experiments.spoken_words import run_audio_outliers

    run_audio_outliers(args.data, args.target, features=args.features, background=args.background,
                       random_state=args.random_state, plot=args.plot, json_path=args.json)
    return 0


def _as_input(data, names):
    """Named columns as a DataFrame where pandas is installed, so the fitted
    model keeps the names (``feature_names_in_``) and checks them when scoring."""
    if names is None:
        return data
    try:
        import pandas as pd
    except ImportError:
        return data
    return pd.DataFrame(data, columns=names)


def _check_output(path, force):
    if not to_stdout(path) and Path(path).exists() and not force:
        raise ValueError(f"{path} exists; use --force to overwrite it")


def _status(message):
    # Results may go to standard output; what skflow says about them goes to standard error.
    print(message, file=sys.stderr)


def sample_from(model, n_samples, random_state=None) -> np.ndarray:
    """Draw from a fitted model or pipeline, mapped back to the input space.

    For a Pipeline whose last step samples, the draws go back through the
    ``inverse_transform`` of every earlier step (e.g. a StandardScaler).
    """
    steps = getattr(model, "steps", None)
    estimator = steps[-1][1] if steps else model
    if not hasattr(estimator, "score_samples"):
        raise ValueError(f"a {type(estimator).__name__} draws targets given features: use its "
                         "sample(X, n_samples) in Python")
    draws = estimator.sample(n_samples, random_state=random_state)
    for _, step in reversed((steps or [])[:-1]):
        if not hasattr(step, "inverse_transform"):
            raise ValueError(f"cannot map samples back through {type(step).__name__}")
        draws = step.inverse_transform(draws)
    return draws


def _save(model, args) -> None:
    try:
        save_model(model, args.output, overwrite=args.force)
    except FileExistsError:
        raise ValueError(f"{args.output} was created during the fit; use --force to overwrite it") from None


def _fit_mixed(args) -> int:
    """``skflow fit --mixed``: MixedDensity (with --outlier MixedOutlierDetector) of a table with text columns."""
    from .estimators import MixedDensity, MixedOutlierDetector

    if args.background is not None:
        raise ValueError("--background takes numeric tables only (a likelihood ratio against a Gaussian of "
                         "generic rows); --mixed --outlier scores the rows' log-densities")
    frame = read_frame(args.data)
    flow_params = dict(n_flows=args.n_flows, hidden_layer_sizes=args.hidden, activation=args.activation,
                       batch_norm=args.batch_norm, learning_rate_init=args.learning_rate,
                       batch_size=args.batch_size, max_iter=args.max_iter, max_time=args.max_time,
                       learning_rate=args.schedule, device=args.device,
                       verbose=0 if args.quiet else 1, compile=args.compile)
    kind = MixedOutlierDetector if args.outlier else MixedDensity
    model = kind(flow_params=flow_params, random_state=args.random_state)
    with contextlib.redirect_stdout(sys.stderr):  # progress lines are not data
        model.fit(frame)
    _save(model, args)
    density = model.density_ if args.outlier else model
    masses = density.point_masses_
    kinds = ", ".join(f"{name}: {kind}" + (f" with a point mass at {masses[j]:g}" if j in masses else "")
                      for j, (name, kind) in enumerate(zip(frame.columns, density.column_types_)))
    what = (f"training mean log-likelihood {model.score(frame):.4f}" if not args.outlier else
            f"{0 if model.calibration_scores_ is None else len(model.calibration_scores_)} rows held out "
            f"for p-values; outlier threshold (offset_) {model.offset_:.4f}")
    _status(f"fitted {kind.__name__} on {len(frame)} rows ({kinds}); {what}; saved to {args.output}")
    return 0


def _fit(args) -> int:
    from .estimators import MAFDensity, MAFOutlierDetector
    from .estimators._validation import describe_gaussian_weight, describe_stopping

    _check_output(args.output, args.force)
    if args.mixed:
        return _fit_mixed(args)
    data, names = read_table(args.data)
    X = _as_input(data, names)
    params = dict(n_flows=args.n_flows, hidden_layer_sizes=args.hidden, activation=args.activation,
                  batch_norm=args.batch_norm, learning_rate_init=args.learning_rate,
                  batch_size=args.batch_size, max_iter=args.max_iter, max_time=args.max_time,
                  learning_rate=args.schedule, device=args.device,
                  random_state=args.random_state, verbose=0 if args.quiet else 1,
                  compile=args.compile, init=args.init, layer_type=args.layer_type)
    # The estimators standardise each column inside: no scaler in front, and
    # `skflow score` reports log-densities in the data's units.
    fit_params = {}
    if args.background is not None and not args.outlier:
        raise ValueError("--background needs --outlier (a likelihood-ratio outlier detector)")
    if args.outlier:
        model = MAFOutlierDetector(**params)
        if args.background is not None:
            background, background_names = read_table(args.background)
            fit_params["X_background"] = _as_input(background, background_names)
    else:
        model = MAFDensity(**params)
    with contextlib.redirect_stdout(sys.stderr):  # progress lines are not data
        model.fit(X, **fit_params)
    _save(model, args)
    what = (f"training mean log-likelihood {model.score(X):.4f}" if not args.outlier else
            f"training mean score {model.score_samples(X).mean():.4f}"
            + (" (log-likelihood ratio)" if args.background is not None else ""))
    weighed = describe_gaussian_weight(model)
    _status(f"fitted on {data.shape[0]} rows x {data.shape[1]} columns: {describe_stopping(model)}; "
            + ("" if weighed is None else f"{weighed}; ") + f"{what}; saved to {args.output}")
    return 0


def _feature_names(model, n):
    names = getattr(model, "feature_names_in_", None)
    return [str(v) for v in names] if names is not None and len(names) == n else [f"x{i}" for i in range(n)]


def _is_mixed(model) -> bool:
    return type(model).__name__ in ("MixedDensity", "MixedOutlierDetector")


def _score(args) -> int:
    _check_output(args.output, args.force)
    model = load_model(args.model)
    if not hasattr(model, "score_samples"):
        raise ValueError(f"{args.model} holds a {type(model).__name__}, a conditional model: score it in "
                         "Python with log_prob(X, y)")
    if _is_mixed(model):
        if args.features:
            raise ValueError("--features needs a model of numeric columns (skflow fit without --mixed)")
        if args.p_values and not hasattr(model, "p_values"):
            raise ValueError(f"{args.model} holds a MixedDensity: --p-values needs an outlier detector "
                             "(skflow fit --mixed --outlier)")
        frame = read_frame(args.data)
        scores = model.score_samples(frame)
        table, columns = scores[:, None], ["log_density"]
        if args.p_values:
            table, columns = np.c_[table, model.p_values(frame)], columns + ["p_value"]
        write_table(args.output, table, columns, overwrite=args.force)
        _status(f"scored {len(scores)} rows (mean log-likelihood {scores.mean():.4f})"
                + ("" if to_stdout(args.output) else f"; wrote {args.output}"))
        return 0
    data, names = read_table(args.data)
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is None:
        names = None  # fitted without names: score the columns by position
    elif names is None and len(fitted_names) == data.shape[1]:
        names = [str(n) for n in fitted_names]  # no header: the model's columns, by position
    rows = _as_input(data, names)
    ratio = getattr(model, "background_", None) is not None
    if ratio:  # the units' Jacobians cancel in a ratio
        scores, columns = model.score_samples(rows), ["log_likelihood_ratio"]
    else:
        scores, columns = model.score_samples(rows) - _scaler_log_jacobian(model), ["log_density"]
    table = scores[:, None]
    if args.features:
        if not hasattr(model, "feature_log_densities"):
            raise ValueError(f"{args.model} holds a {type(model).__name__}: --features needs a MAFDensity "
                             "or MAFOutlierDetector itself (as `skflow fit` writes it today)")
        columns += [f"log_density_given_rest:{n}" for n in _feature_names(model, data.shape[1])]
        table = np.c_[table, model.feature_log_densities(rows)]
    if args.p_values:
        if not hasattr(model, "p_values"):
            raise ValueError(f"{args.model} holds a {type(model).__name__}: --p-values needs an outlier detector "
                             "(skflow fit --outlier)")
        columns.append("p_value")
        table = np.c_[table, model.p_values(rows)]
    write_table(args.output, table, columns, overwrite=args.force)
    _status(f"scored {len(scores)} rows (mean log-likelihood{' ratio' if ratio else ''} {scores.mean():.4f})"
            + ("" if to_stdout(args.output) else f"; wrote {args.output}"))
    return 0


def _scaler_log_jacobian(model) -> float:
    """``log |det|`` of the StandardScalers in front of the last step of a
    pipeline (older `skflow fit` models): subtracting it puts their
    log-densities in the data's units.  Other steps refuse, as their
    Jacobian is not known here."""
    from sklearn.preprocessing import StandardScaler

    total = 0.0
    for _, step in (getattr(model, "steps", None) or [])[:-1]:
        if isinstance(step, StandardScaler):
            if step.with_std and step.scale_ is not None:
                total += float(np.log(step.scale_).sum())
        elif step not in (None, "passthrough"):
            raise ValueError(f"the model's pipeline holds a {type(step).__name__}: its log-densities are "
                             "of the transformed features; score it in Python with score_samples")
    return total


def _sample(args) -> int:
    _check_output(args.output, args.force)
    model = load_model(args.model)
    if _is_mixed(model):  # a table: text columns, integer columns, the training dtypes
        draws = model.sample(args.n_samples, random_state=args.random_state)
        if isinstance(draws, np.ndarray):
            write_table(args.output, draws, _feature_names(model, draws.shape[1]), overwrite=args.force)
        else:
            write_frame(args.output, draws, overwrite=args.force)
        _status(f"drew {len(draws)} samples" + ("" if to_stdout(args.output) else f"; wrote {args.output}"))
        return 0
    draws = sample_from(model, args.n_samples, args.random_state)
    write_table(args.output, draws, _feature_names(model, draws.shape[1]), overwrite=args.force)
    _status(f"drew {len(draws)} samples" + ("" if to_stdout(args.output) else f"; wrote {args.output}"))
    return 0


def _demo(args) -> int:
    from .experiments.demo import run_demo

    run_demo(verbose=args.verbose)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    """``"100,100"`` as ``(100, 100)``: one argument, so it cannot take the next positional."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"must be positive integers separated by commas (e.g. 100,100), "
                                         f"got {text!r}")
    return sizes


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _positive_int_or_auto(text: str):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be a positive integer or "auto", got {text!r}')
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skflow", description="Normalizing-flow density estimation with scikit-learn."
    )
    parser.add_argument("--version", action="version", version=f"skflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gas = sub.add_parser(
        "gas",
        help="the MAF paper's GAS density experiment",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
    gas.add_argument("--random-state", type=int, default=0, help="seed of the split and the model")
    gas.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    gas.set_defaults(func=_gas)

    audio = sub.add_parser(
        "audio-outliers",
        help="train on one spoken word, flag the others",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=(
            "Fit MAFOutlierDetector and scikit-learn's detectors on one word's clips of a "
            "Speech-Commands-style folder (speaker-disjoint hold-out) and print, for every "
            "other word and silence, the MAF mean log-likelihood rank and each detector's "
            "ROC AUC."
        ),
    )
    audio.add_argument("--data", required=True, help="folder with one sub-folder per word")
    audio.add_argument("--target", default="yes", help="the word to train on")
    audio.add_argument("--features", choices=["mel", "spectrum", "frames"], default="mel",
                       help="clip features for every detector (mel; or spectrum), or "
                            "frames: frame densities for the MAF and a GMM, mel clip summaries for the rest")
    audio.add_argument("--background", action="store_true",
                       help="also the MAF scored by likelihood ratio against a Gaussian of the training "
                            "speakers' clips of every other word (all words' speakers are then split, and "
                            "only held-out speakers' clips are scored)")
    audio.add_argument("--json", default=None, help="write the per-word AUCs and ranks to this JSON file")
    audio.add_argument("--plot", default="results/audio_scores.png", help="score histogram path")
    audio.add_argument("--random-state", type=int, default=0, help="seed of the split and the models")
    audio.set_defaults(func=_audio)

    fit = sub.add_parser("fit", help="fit MAFDensity to a table and save it",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                         description="Fit a density model to a CSV (header optional), NPY or "
                         "Parquet table of numbers (with --mixed: text columns too) and save it: "
                         "with skops for a .skops path "
                         "(safe to load: nothing in the file runs), else with joblib. The model "
                         "standardises each column inside, so any units will do. Progress and "
                         "the summary go to standard error.")
    fit.add_argument("data", help="training table (.csv, .npy, .parquet; - reads CSV from standard input)")
    fit.add_argument("--output", "-o", default="model.skops",
                     help="where to save the model (default model.skops; .joblib for a pickle)")
    fit.add_argument("--force", action="store_true", help="overwrite an existing output file")
    fit.add_argument("--n-flows", type=_positive_int, default=5, help="number of MAF layers")
    fit.add_argument("--hidden", type=_sizes, default=(100, 100), metavar="SIZES",
                     help="hidden layer sizes of each MADE, comma-separated (e.g. 100,100)")
    fit.add_argument("--activation", default="auto", choices=["auto", "tanh", "relu", "elu", "gelu", "silu"],
                     help="hidden-unit non-linearity ('auto': relu on more than 10,000 rows, else tanh)")
    fit.add_argument("--batch-norm", action="store_true",
                     help="batch-norm bijector after each MAF layer (the MAF paper; off by default)")
    fit.add_argument("--learning-rate", type=float, default=1e-3,
                     help="Adam learning rate (for batches of 256 rows with --batch-size auto)")
    fit.add_argument("--batch-size", type=_positive_int_or_auto, default="auto",
                     help='rows per step, or "auto" (256, up to 1024 on large data; default)')
    fit.add_argument("--max-iter", type=_positive_int_or_auto, default="auto",
                     help='maximum epochs, or "auto" (200, more on small data: at least 2,000 steps; default)')
    fit.add_argument("--max-time", type=_positive_float, default=None, metavar="SECONDS",
                     help="stop training after this many seconds, keeping the best weights so far "
                          "(a timed fit depends on the machine's speed)")
    fit.add_argument("--schedule", choices=["constant", "adaptive", "cosine"], default="constant",
                     help="learning-rate schedule: constant (default), adaptive (halved on a plateau) or "
                          "cosine (to zero over --max-time, else over --max-iter)")
    fit.add_argument("--layer-type", default="auto",
                     help="autoregressive layers, a layer_type of MAFDensity: auto (spline up to 10 columns, "
                          "affine_spline there from the identity start, else affine), affine, spline or "
                          "affine_spline (best on heavy-tailed data, slower), "
                          "or one registered with skflow.nn.layers.register_layer_type")
    fit.add_argument("--init", choices=["gaussian_mixture", "gaussian", "identity"], default="gaussian_mixture",
                     help="start at the best Gaussian mixture of the data by cross-validation (default; on "
                          "more than 3,000 rows the identity, then the mixture again where it scores the "
                          "held-out rows above the trained flow) or at "
                          "its full-covariance Gaussian, either kept unless training beats it on held-out rows, "
                          "or at the identity (the MAF paper)")
    fit.add_argument("--no-scale", action="store_true", help=argparse.SUPPRESS)  # no scaler is used now
    fit.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    fit.add_argument("--compile", action="store_true",
                     help="train through torch.compile of the reference modules (experimental; slower on CPU)")
    fit.add_argument("--random-state", type=int, default=0, help="seed: the same seed, the same model")
    fit.add_argument("--quiet", action="store_true", help="no progress line per epoch")
    fit.add_argument("--outlier", action="store_true",
                     help="fit MAFOutlierDetector, with --mixed MixedOutlierDetector (scores with conformal "
                          "p-values: skflow score --p-values)")
    fit.add_argument("--mixed", action="store_true",
                     help="a CSV (with a header) or Parquet table with text (categorical) and integer columns: "
                          "fit MixedDensity (categories x a flow of the numbers given them; needs pandas; "
                          "with --outlier, MixedOutlierDetector). "
                          "The flow options above apply to its numeric part; --layer-type and --init do not")
    fit.add_argument("--background", metavar="TABLE",
                     help="with --outlier: generic rows for a background Gaussian; scores become the "
                          "log-likelihood ratio of the model to it")
    fit.set_defaults(func=_fit)

    model_help = ("a model written by `skflow fit`, skops.io.dump (.skops: safe to load) or "
                  "joblib.dump (.joblib: loading it runs any code it holds; only load such files "
                  "from people you trust)")
    score = sub.add_parser("score", help="per-row log-densities of a table under a saved model",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                           description="Write one log-density per row as CSV (column log_density: "
                           "natural log of the density in the data's units, the Jacobian of a "
                           "pipeline's StandardScaler included) to standard output, or to --output. "
                           "A table without a header is read by column position.")
    score.add_argument("model", help=model_help)
    score.add_argument("data", help="table to score (.csv, .npy, .parquet; - reads CSV from standard input)")
    score.add_argument("--output", "-o", help="CSV file to write (default: standard output)")
    score.add_argument("--force", action="store_true", help="overwrite an existing output file")
    score.add_argument("--features", action="store_true",
                       help="also each feature's conditional log-density given the row's other features "
                            "(columns log_density_given_rest:NAME; the lowest is the least expected)")
    score.add_argument("--p-values", action="store_true",
                       help="also each row's conformal p-value (column p_value; small for outliers), "
                            "for a model written by skflow fit --outlier")
    score.set_defaults(func=_score)

    sample = sub.add_parser("sample", help="draw samples from a saved model (in the data's units)",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                            description="Write draws as CSV, in the data's units, with the training "
                            "table's column names, to standard output or to --output.")
    sample.add_argument("model", help=model_help)
    sample.add_argument("n_samples", type=_positive_int, help="number of rows to draw")
    sample.add_argument("--output", "-o", help="CSV file to write (default: standard output)")
    sample.add_argument("--force", action="store_true", help="overwrite an existing output file")
    sample.add_argument("--random-state", type=int, help="seed: the same seed, the same draws")
    sample.set_defaults(func=_sample)

    demo = sub.add_parser("demo", help="a short demo on two moons vs GaussianMixture",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    demo.add_argument("--verbose", action="store_true", help="print a progress line per epoch")
    demo.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)  # the default now
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader went away (`skflow score ... | head`): stop quietly, as
        # Unix tools do; point stdout at /dev/null so the exit flush is quiet too.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe
    except (FileNotFoundError, OSError, ValueError) as exc:
        print(f"skflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"skflow {args.command}: error: out of memory (ask for fewer rows or samples)", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug or a case validation missed: one line, not a traceback
        print(f"skflow {args.command}: error: {type(exc).__name__}: {exc} (set SKFLOW_TRACEBACK=1 for the "
              "traceback; please report it)", file=sys.stderr)
        if os.environ.get("SKFLOW_TRACEBACK"):
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main())
