"""What the two flows of ``X`` alone add to :class:`BaseMAF`:
:class:`UnconditionalMAF`, the base of MAFDensity and MAFOutlierDetector
(ensembles, the mixture with the Gaussian, scoring and sampling ``X``)."""

from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
import torch
from joblib import Parallel, delayed
from numpy.typing import ArrayLike
from scipy.special import logsumexp
from sklearn.base import _fit_context, clone
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ..chunked import ChunkedRows
from ..nn import FlowEnsemble
from .._grid import grid_steps
from ..nn.devices import private_random_state, resolve_device, seed_generator
from ._base import BaseMAF
from ._fitting import GaussianStart
from ._mixture_start import GaussianMixtureStart
from ._gaussian import (
    DEFENSIVE_WEIGHT,
    GAUSSIAN_WEIGHT_FLOOR,
    _best_gaussian_weight,
    _gaussian_log_pdf,
    _shrunk_gaussian,
    add_ridge,
    defended,
    gaussian_and_t_log_pdfs,
    student_t_draws,
)
from . import _architecture
from ._scaling import refuse_rows_beyond_reach
from ._streamed import StreamedRows, measure_stream, refit_batch_norm_streamed
from ._validation import (check_n_samples, check_numeric_columns, describe_gaussian_weight, warn_if_few_rows,
                          warn_if_point_masses)


#: feature_log_densities integrates over this many training standard deviations either side.
ATTRIBUTION_HALF_WIDTH = 10.0


def _start(est, rng, moments=None):
    """The start strategy of ``est.init_`` (None: every layer at the identity);
    ``moments``: the Gaussian of streamed training rows."""
    if est.init_ == "gaussian_mixture" and est.base == "normal":
        return GaussianMixtureStart(rng.randint(np.iinfo(np.int32).max), moments)
    if est.init_ in ("gaussian", "gaussian_mixture"):
        return GaussianStart(moments)
    return None


def _chose_a_mixture(start) -> bool:
    """Whether ``start`` is a mixture start that chose more than one component."""
    return isinstance(start, GaussianMixtureStart) and start.choice is not None and start.choice[0] > 1


def _fit_member(template, X, split, seed):
    """One ensemble member: ``template``'s flow trained on ``split``'s rows."""
    member = clone(template).set_params(n_estimators=1, n_jobs=None, random_state=seed,
                                        warm_start=False, verbose=0, gaussian_weight=0.0)
    member._resolve_init(X.shape[0], continuing=False)
    member._train(X, split=split, start=_start(member, np.random.RandomState(seed)), refit_start=False)
    return member


class UnconditionalMAF(BaseMAF):
    """A flow of ``X`` alone: fit(X), score_samples, sample (MAFDensity, MAFOutlierDetector)."""

    _parameter_constraints: dict = {
        **BaseMAF._parameter_constraints,
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "gaussian_weight": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="both")],
        "init": [StrOptions({"gaussian_mixture", "gaussian", "identity"})],
        "dequantize": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_flows=5,
        hidden_layer_sizes=(100, 100),
        activation="auto",
        batch_norm=False,
        order="reverse",
        learning_rate="constant",
        learning_rate_init=1e-3,
        weight_decay=0.0,
        batch_size="auto",
        max_iter="auto",
        max_time=None,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change="auto",
        tol=1e-4,
        log_scale_bound=5.0,
        max_grad_norm=10.0,
        average_decay=0.999,
        device="auto",
        dtype="float32",
        random_state=None,
        verbose=0,
        warm_start=False,
        compile=False,
        init="gaussian_mixture",
        base="normal",
        n_components=10,
        layer_type="auto",
        n_bins=8,
        tail_bound=5.0,
        n_estimators=1,
        n_jobs=None,
        gaussian_weight="auto",
        dequantize=True,
    ):
        super().__init__(
            n_flows=n_flows,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            batch_norm=batch_norm,
            order=order,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_iter=max_iter,
            max_time=max_time,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            log_scale_bound=log_scale_bound,
            max_grad_norm=max_grad_norm,
            average_decay=average_decay,
            device=device,
            dtype=dtype,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            compile=compile,
            init=init,
            base=base,
            n_components=n_components,
            layer_type=layer_type,
            n_bins=n_bins,
            tail_bound=tail_bound,
        )
        self.n_estimators = n_estimators
        self.n_jobs = n_jobs
        self.gaussian_weight = gaussian_weight
        self.dequantize = dequantize

    def _make_flow(self, config: dict, generator: torch.Generator):
        if "members" in config:
            return FlowEnsemble([super(UnconditionalMAF, self)._make_flow(c, generator)
                                 for c in config["members"]])
        return super()._make_flow(config, generator)

    def _train_ensemble(self, X: np.ndarray, split=None):
        """Train ``n_estimators`` flows on bootstrap samples of the training
        rows of ``split`` (or of a random split); set the fitted attributes of
        their mixture; return the held-out row positions (or None)."""
        if self.warm_start:
            raise ValueError("warm_start=True is not supported with n_estimators > 1")
        rng = private_random_state(self.random_state)
        n = X.shape[0]
        if split is not None:
            val_index, train_rows = split
        elif self.early_stopping:
            val_index, train_rows = self._validation_split(n, rng, None)
        else:
            val_index, train_rows = None, np.arange(n)
        splits = [(val_index, np.sort(rng.choice(train_rows, len(train_rows), replace=True)))
                  for _ in range(self.n_estimators)]
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators)
        members = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(self, X, split, int(seed)) for split, seed in zip(splits, seeds))
        device = resolve_device(self.device)
        self.flow_ = FlowEnsemble([m.flow_ for m in members]).to(device).eval()
        self.device_ = device
        self._flow_config_ = {"members": [m._flow_config_ for m in members]}
        self.batch_size_ = members[0].batch_size_
        self.layer_type_ = members[0].layer_type_
        self.activation_ = members[0].activation_
        self.init_ = members[0].init_
        self.n_iter_ = np.array([m.n_iter_ for m in members])
        self.best_epoch_ = np.array([m.best_epoch_ for m in members])
        self.loss_curve_ = [m.loss_curve_ for m in members]
        self.validation_scores_ = [m.validation_scores_ for m in members] if self.early_stopping else None
        self.best_validation_score_ = None
        if val_index is not None:  # of the members' mixture (the Gaussian is mixed in after)
            self.best_validation_score_ = float(BaseMAF._log_density(self, X[val_index]).mean())
        if self.init_ != "identity":
            self.covariance_shrinkage_ = np.array([m.covariance_shrinkage_ for m in members])
        self._fit_epochs = int(self.n_iter_.max())
        self._fit_epoch_limit = max(m._fit_epoch_limit for m in members)
        self._fit_out_of_time = any(m._fit_out_of_time for m in members)
        return val_index

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: None = None, groups: ArrayLike | None = None):
        """Fit the flow to ``X`` by maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or ChunkedRows
            Training rows; at least 2.  Rows wrapped in
            :class:`~skflow.ChunkedRows` (a memmap, a Dask array, Parquet
            data) are streamed a chunk at a time instead of being held in
            memory: standardisation and the start come from one pass over
            them (their mean and covariance, and a sample of rows), early
            stopping holds out whole chunks, and the grid steps to
            dequantise are found on the sample (see the user guide on
            scaling).
        y : None
            Ignored, present for API consistency.
        groups : array-like of shape (n_samples,), default=None
            The source of each row (a speaker, a recording day, a batch).
            With early stopping, the validation rows are then whole groups
            (about ``validation_fraction`` of them), so early stopping and the
            Gaussian start's significance test judge the flow on sources it
            was not trained on -- what matters when new data come from new
            sources.  In a pipeline, pass it as ``<step>__groups``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit_keeping_state(self._fit, X, groups)

    def _one_flow(self) -> bool:
        if self.n_estimators != 1:  # an ensemble's members train on their own bootstrap samples
            raise AttributeError("partial_fit trains one flow: set n_estimators=1")
        return True

    @available_if(_one_flow)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike, y: None = None):
        """One pass of optimiser steps over the rows ``X``.

        For data that arrive in chunks, or do not fit in memory at once:
        each call takes ``len(X) // batch_size_`` Adam steps on mini-batches
        of ``X`` in random order, continuing the optimiser where the last
        call left it, so calls on consecutive chunks train as one epoch of
        :meth:`fit` without weight averaging (``average_decay=None``) on
        their rows would (in chunk order): the weights are those of the last
        step.  The first call on
        an unfitted estimator sets the model up from its rows alone: the
        standardisation (``location_``, ``scale_``), the grid steps to
        dequantise (``grid_steps_``) and the start (``init``) are those of
        that first chunk -- make it large and representative.  Nothing is
        held out: no early stopping, the Gaussian is mixed in at the floor
        of ``gaussian_weight="auto"`` (or the float given), and
        ``n_iter_`` counts the calls.  After :meth:`fit`, it continues the
        fitted flow (with a fresh optimiser).  Only with ``n_estimators=1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training rows (at least 2 in the first call).
        y : None
            Ignored, present for API consistency.

        Returns
        -------
        self : object
            The estimator, trained one pass further.
        """
        return self._fit_keeping_state(self._fit, X, None, True)

    def _fit(self, X, groups=None, partial=False, hold_out=None):
        """Fit (with ``partial``, one epoch on ``X``, see :meth:`partial_fit`).

        ``hold_out(n_rows, groups)`` may name rows (positions, or None) to
        keep out of everything a fresh ``fit`` does.  Returns the standardised
        training rows, the early-stopping rows among them (positions, or
        None) and the held-out rows as validated, untouched (or None).
        """
        if isinstance(X, ChunkedRows):
            return self._fit_streamed(X, groups, partial, hold_out)
        continuing = self._continuing(partial)
        check_numeric_columns(X)
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=1 if continuing else 2,
            reset=not continuing
        )
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (X.shape[0],):
                raise ValueError(f"groups must hold one entry per row of X ({X.shape[0]}), "
                                 f"got shape {groups.shape}")
        held = None
        # partial_fit holds nothing out, nor does a continued fit (its first fit trained on any rows now drawn).
        positions = None if hold_out is None or partial or continuing else hold_out(X.shape[0], groups)
        if positions is not None:
            kept = np.ones(X.shape[0], dtype=bool)
            kept[positions] = False
            X, held = X[kept], X[positions]
            groups = None if groups is None else groups[kept]
        if not continuing:
            warn_if_few_rows(*X.shape)
        if continuing:
            steps = self.grid_steps_  # the warm fit's data are dequantised as the first fit's
        else:
            steps = grid_steps(X) if self.dequantize else np.zeros(X.shape[1])
            if not partial:
                warn_if_point_masses(X, steps)
        self.grid_steps_ = steps
        if steps.any():
            # One step of uniform noise: a density instead of spikes on the grid values.
            noise_rng = np.random.RandomState(private_random_state(self.random_state).randint(2**31 - 1))
            X = X + (noise_rng.uniform(-0.5, 0.5, size=X.shape) * steps).astype(X.dtype)
        X = self._fit_standardised(X, continuing)
        split = None
        if groups is not None and self.early_stopping:
            split = self._group_split(groups)
        self._check_trainable_base()
        if self.n_estimators > 1:
            val_index = self._train_ensemble(X, split)
            self._set_gaussian_mixture(X, None)
        else:
            self._resolve_init(X.shape[0], continuing)
            result, val_index, start = self._train_weighing_the_mixture(X, split, partial=partial,
                                                                        continuing=continuing)
            self._mix_in_gaussian(X, result, start, val_index)
        return X, val_index, held

    def _resolve_init(self, n_rows: int, continuing: bool) -> None:
        """Set ``init_``, the start a fit on ``n_rows`` rows makes (a
        continued fit keeps the one it continues)."""
        if not (continuing and hasattr(self, "init_")):
            self.init_ = _architecture.resolve_init(self.init, n_rows)
            if self.verbose and self.init_ != self.init:
                print(f"{n_rows:,} rows: the flow starts at the identity (init={self.init!r} starts at a "
                      f"mixture on at most {_architecture.MIXTURE_START_MAX_ROWS:,} rows, and weighs it "
                      "against the trained flow on more)")

    def _train_weighing_the_mixture(self, X, split, moments=None, partial=False, stream=None,
                                    continuing=False):
        """:meth:`_train` from the start of ``init_``; return the result, the
        validation rows (or None) and the start.

        Where ``init="gaussian_mixture"`` started at the identity (more rows
        than :data:`~._architecture.MIXTURE_START_MAX_ROWS`), the mixture
        start is then fitted to the same training rows and scored on the
        same validation rows (where ``max_time`` leaves time); if it scores
        above the trained flow, the flow is trained again from it (and
        kept: its start unless training beats it) and ``init_`` becomes
        "gaussian_mixture"; not where ``continuing`` (a warm start or
        ``partial_fit``).  A flow from the identity can miss what a mixture
        holds from the outset (columns that are exact linear functions of
        others, well-separated clusters).
        """
        start = _start(self, private_random_state(self.random_state), moments)
        began = time.perf_counter()
        result, val_index = self._train(X, split=split, start=start, partial=partial, stream=stream)
        time_left = None if self.max_time is None else self.max_time - (time.perf_counter() - began)
        if self.init != "gaussian_mixture" or self.init_ != "identity" or self.base != "normal" \
                or val_index is None or continuing or (time_left is not None and time_left <= 0):
            return result, val_index, start
        if split is None:  # the same rows again: train on what the first run trained on
            trained = np.ones(len(X), dtype=bool)
            trained[val_index] = False
            split = (val_index, np.flatnonzero(trained))
        if self.verbose:
            print(f"weighing the start at a mixture against the flow trained from the identity "
                  f"({result.best_validation_score:.4f} on validation)")
        self.init_ = "gaussian_mixture"
        mixture = _start(self, private_random_state(self.random_state), moments)
        retrained, _ = self._train(X, split=split, start=mixture, stream=stream,
                                   rival=result.best_validation_score, afresh=True, time_left=time_left)
        if retrained is None:
            self.init_ = "identity"
            return result, val_index, start
        return retrained, val_index, mixture

    def _check_trainable_base(self) -> None:
        if self.base == "gaussian_mixture":
            raise ValueError("base='gaussian_mixture' is chosen by init='gaussian_mixture' (with base='normal'); "
                             "it cannot be trained from an arbitrary start")

    def _mix_in_gaussian(self, X, result, start, val_index, moments=None) -> None:
        """:meth:`_set_gaussian_mixture` after one flow's fit (``result``) from ``start``."""
        held_out = result.held_out
        if held_out is not None and result.best_epoch == 0 and not (
                self._weigh_a_kept_mixture_start and _chose_a_mixture(start)):
            held_out = None  # the start kept: its Gaussian, or a mixture left as chosen
        elif held_out is not None and isinstance(start, GaussianMixtureStart):
            # The mixed-in Gaussian is not the start here: its own held-out log-densities.
            held_out = (self._held_out_gaussian(X, val_index), held_out[1])
        self._set_gaussian_mixture(X, held_out, moments)

    def _fit_streamed(self, source: ChunkedRows, groups=None, partial=False, hold_out=None):
        """:meth:`_fit` of rows streamed from disk (see :mod:`~skflow.estimators._streamed`)."""
        if partial:
            raise TypeError("partial_fit takes one chunk of rows in memory; pass ChunkedRows to fit instead")
        if groups is not None:
            raise ValueError("groups cannot be given with ChunkedRows: early stopping holds out whole chunks")
        if self.n_estimators != 1:
            raise ValueError("a fit of ChunkedRows trains one flow: set n_estimators=1")
        if source.distributed and not isinstance(self.random_state, Integral):
            raise ValueError("ChunkedRows(distributed=True) needs random_state set to the same integer "
                             "on every rank (the ranks must choose the same start)")
        self._check_trainable_base()
        continuing = self._continuing()
        if continuing and source.n_features != self.n_features_in_:
            raise ValueError(f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        rng = private_random_state(self.random_state)
        found = measure_stream(source, rng, early_stopping=self.early_stopping,
                               validation_fraction=self.validation_fraction,
                               hold_out=None if continuing else hold_out)
        d = source.n_features
        if not continuing:
            self.n_features_in_ = d
            if source.feature_names is None:
                self.__dict__.pop("feature_names_in_", None)
            else:
                self.feature_names_in_ = source.feature_names
            self.grid_steps_ = grid_steps(found.sample) if self.dequantize else np.zeros(d)
            # The moments of the dequantised rows: uniform noise adds step**2 / 12 to each variance.
            spread = np.sqrt(np.diag(found.covariance) + self.grid_steps_**2 / 12)
            self.location_ = found.mean
            self.scale_ = np.where(spread > 10 * np.finfo(np.float64).eps * np.maximum(np.abs(found.mean), 1.0),
                                   spread, 1.0)
        noise = np.random.RandomState(rng.randint(2**31 - 1))

        def standardised(rows):
            if self.grid_steps_.any():
                rows = rows + noise.uniform(-0.5, 0.5, size=rows.shape) * self.grid_steps_
            Z, outside = self._standardised(rows)
            refuse_rows_beyond_reach(outside)
            return Z

        X = standardised(found.sample)
        split = (None, np.arange(len(X)))
        if found.validation is not None:
            split = (np.arange(len(X), len(X) + len(found.validation)), split[1])
            X = np.concatenate([X, standardised(found.validation)])
        covariance = (found.covariance + np.diag(self.grid_steps_**2 / 12)) / np.outer(self.scale_, self.scale_)
        moments = (np.zeros(d), covariance)
        world = 1
        if source.distributed:
            import torch.distributed as dist

            world = dist.get_world_size()
        stream = StreamedRows(source, found.train_chunks, found.n_train_min, location=self.location_,
                              scale=self.scale_, grid_steps=self.grid_steps_, dtype=np.dtype(self.dtype),
                              device=resolve_device(self.device), noise_seed=rng.randint(2**31 - 1),
                              n_total=found.n_train, world=world)
        self._resolve_init(found.n_train, self._continuing())  # every rank's rows: the same start on each
        result, val_index, start = self._train_weighing_the_mixture(X, split, moments, stream=stream,
                                                                    continuing=continuing)
        refit_batch_norm_streamed(self.flow_, stream)  # the sample's statistics served training; all rows' now
        self._mix_in_gaussian(X, result, start, val_index, moments)
        return X, val_index, found.held

    def _held_out_gaussian(self, X: np.ndarray, val_index: np.ndarray) -> np.ndarray:
        """Log-densities of the rows ``val_index`` under the Gaussian of the
        other rows (covariance shrunk by ``covariance_shrinkage_``)."""
        train = np.ones(len(X), dtype=bool)
        train[val_index] = False
        x = torch.from_numpy(np.require(X[train], np.float64, ["W"]))
        mean, cov, _ = _shrunk_gaussian(x, None, float(self.covariance_shrinkage_))
        return _gaussian_log_pdf(X[val_index], mean.numpy(), add_ridge(cov))

    #: ``gaussian_weight="auto"``: how many standard errors of validation
    #: log-likelihood the flow must gain before less weight goes to the
    #: Gaussian (0: the best weight; the outlier detector is cautious).
    _gaussian_weight_caution = 0.0
    #: ... and the smallest weight it gives the Gaussian (a defensive share
    #: for densities; the outlier detector ranks rows by the flow's own tails).
    _gaussian_weight_floor = GAUSSIAN_WEIGHT_FLOOR
    #: ... and whether a mixture start that training did not beat is weighed
    #: against the Gaussian too (the density keeps it at the floor: weighing
    #: it on the few validation rows of small data cost held-out likelihood).
    _weigh_a_kept_mixture_start = False
    #: ... and the share of the heavy-tailed defensive Student t mixed in
    #: beside the Gaussian (see :data:`~._gaussian.DEFENSIVE_WEIGHT`; none for
    #: the outlier detector, which ranks far rows by the flow's own tails).
    _defensive_weight = DEFENSIVE_WEIGHT

    def _set_gaussian_mixture(self, X: np.ndarray, held_out, moments=None) -> None:
        """Set ``gaussian_weight_`` (and the Gaussian's moments when it is
        positive); ``held_out``: the validation rows' log-densities under the
        Gaussian start and the trained flow, when training beat the start;
        ``moments``: the mean and covariance of streamed training rows, of
        which ``X`` holds a sample."""
        weight = self.gaussian_weight
        if weight == "auto":
            weight = (self._gaussian_weight_floor if held_out is None or self.n_estimators > 1
                      else _best_gaussian_weight(*held_out, caution=self._gaussian_weight_caution,
                                                 floor=self._gaussian_weight_floor))
        self.gaussian_weight_ = float(weight)
        said = describe_gaussian_weight(self)
        if self.verbose and said is not None:
            print(said)
        for name in ("gaussian_mean_", "gaussian_covariance_"):
            self.__dict__.pop(name, None)
        if self.gaussian_weight_ == 0.0:
            return
        shrinkage = getattr(self, "covariance_shrinkage_", None)  # the start's, where there is one
        # torch wraps only writeable arrays (not read-only memmaps): np.require copies those.
        mean, cov, _ = _shrunk_gaussian(torch.from_numpy(np.require(X, np.float64, ["W"])), None,
                                        None if shrinkage is None or np.ndim(shrinkage) > 0 else float(shrinkage),
                                        moments=moments)
        self.gaussian_mean_ = mean.numpy()
        self.gaussian_covariance_ = add_ridge(cov)

    def _log_density(self, X: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        weight = self.gaussian_weight_
        if weight == 0.0:
            return super()._log_density(X, context)
        mixed, student = gaussian_and_t_log_pdfs(X, self.gaussian_mean_, self.gaussian_covariance_)
        if weight < 1.0:
            flow = super()._log_density(X, context)
            mixed = np.logaddexp(np.log(weight) + mixed, np.log1p(-weight) + flow)
        if self._defensive_weight:
            mixed = defended(mixed, student)
        return mixed

    def _draw(self, n: int, generator, context: np.ndarray | None = None) -> np.ndarray:
        weight = self.gaussian_weight_
        if weight == 0.0:
            return super()._draw(n, generator, context)
        from_gaussian = (torch.rand(n, generator=generator, dtype=torch.float64) < weight).numpy()
        out = np.empty((n, self.n_features_in_))
        out[~from_gaussian] = super()._draw(int((~from_gaussian).sum()), generator, context)
        noise = torch.randn(int(from_gaussian.sum()), self.n_features_in_, generator=generator,
                            dtype=torch.float64).numpy()
        factor = np.linalg.cholesky(self.gaussian_covariance_)
        out[from_gaussian] = self.gaussian_mean_ + noise @ factor.T
        if self._defensive_weight:
            # Drawn after the rest, so that a seed's other draws stay as they were.
            from_t = (torch.rand(n, generator=generator, dtype=torch.float64) < self._defensive_weight).numpy()
            k = int(from_t.sum())
            noise = torch.randn(k, self.n_features_in_, generator=generator, dtype=torch.float64).numpy()
            uniform = 1.0 - torch.rand(k, generator=generator, dtype=torch.float64).numpy()  # in (0, 1]
            out[from_t] = student_t_draws(noise, uniform, self.gaussian_mean_, factor)
        return out

    def _group_split(self, groups: np.ndarray):
        """(validation rows, training rows) with whole groups held out."""
        if len(np.unique(groups)) < 2:
            raise ValueError("groups needs at least two distinct values to hold one out for early stopping")
        splitter = GroupShuffleSplit(n_splits=1, test_size=self.validation_fraction,
                                     random_state=private_random_state(self.random_state).randint(2**31 - 1))
        train, val = next(splitter.split(np.zeros(len(groups)), groups=groups))
        return val, train

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log-density of each row of ``X`` under the fitted flow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,), dtype float64
            Natural-log densities.  Rows far outside the float range of the
            model's dtype get ``-inf``.
        """
        Z, outside = self._standardised(self._validated(X))
        out = self._log_density(Z) - self._log_scale()
        out[outside] = -np.inf
        return out

    def feature_log_densities(self, X: ArrayLike, n_grid: int = 401) -> np.ndarray:
        """Each feature's conditional log-density given the others, ``log p(x_j | x_-j)``.

        How surprising each value is once every other feature of its row is
        known: a row flagged as an outlier because of one feature has a low
        entry there.  It is ``log p(x) - log p(x_-j)``, the marginal
        ``p(x_-j) = integral p(x) dx_j`` computed by quadrature on
        ``n_grid`` points evenly spaced over 10 training standard deviations
        either side of the training mean (exact up to that quadrature).  In
        the data's units, like :meth:`score_samples`.  The entries of a row
        do not sum to its log-density (each conditions on all the others).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        n_grid : int, default=401
            Quadrature points per feature: the cost is ``n_grid`` scorings
            per row and feature.

        Returns
        -------
        log_density : ndarray of shape (n_samples, n_features)
            ``-inf`` for rows beyond the model's range.
        """
        if not isinstance(n_grid, Integral) or n_grid < 2:
            raise ValueError(f"n_grid must be an integer >= 2, got {n_grid!r}")
        Z, outside = self._standardised(self._validated(X))
        n, d = Z.shape
        grid = np.linspace(-ATTRIBUTION_HALF_WIDTH, ATTRIBUTION_HALF_WIDTH, n_grid)
        log_step = np.log(grid[1] - grid[0])
        joint = self._log_density(Z)
        out = np.empty((n, d))
        rows_per_chunk = max(1, (1 << 20) // n_grid)
        for j in range(d):
            for start in range(0, n, rows_per_chunk):
                block = np.repeat(Z[start : start + rows_per_chunk], n_grid, axis=0)
                block[:, j] = np.tile(grid, len(block) // n_grid)
                marginal = logsumexp(self._log_density(block).reshape(-1, n_grid), axis=1) + log_step
                out[start : start + rows_per_chunk, j] = joint[start : start + rows_per_chunk] - marginal
        out -= np.log(self.scale_)
        out[outside] = -np.inf
        return out

    @torch.no_grad()
    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw samples from the fitted flow.

        Sampling inverts every MAF layer one dimension at a time, computing
        each hidden unit once: about one network pass per layer.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw; 0 gives an empty array.
        random_state : int, RandomState instance or None, default=None
            Seeds the base noise; the same seed gives the same samples.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features), dtype float64
        """
        check_is_fitted(self)
        check_n_samples(n_samples, self.n_features_in_)
        draws = self._draw(int(n_samples), seed_generator(private_random_state(random_state)))
        return draws * self.scale_ + self.location_
