"""One exact density for tables of categorical, integer and continuous columns."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils import check_array
from sklearn.utils.validation import _check_feature_names, _check_n_features, check_is_fitted

from .._grid import grid_steps
from ..nn.devices import private_random_state
from ._categorical_chain import CategoricalChain, one_hot
from ._conditional_mixture import ConditionalGaussianMixture
from ._gaussian import (
    DEFENSIVE_WEIGHT,
    GAUSSIAN_WEIGHT_FLOOR,
    add_ridge,
    defended,
    gaussian_and_t_log_pdfs,
    student_t_draws,
)
from ._column_maps import ColumnMap, infer_column_types, integer_step, lattice_cells, one_sided_scale, sparse_lattice
from ._point_masses import find_point_mass, quadrature_nodes
from ._validation import check_n_samples
from .density import MAFDensity
from .regressor import MAFRegressor

__all__ = ["MixedDensity"]

#: Up to this many rows, the numeric part given categories is trained from
#: three starts (see the class notes) ...
THREE_STARTS_MAX_ROWS = 20_000
#: ... and up to this many it is their equal mixture, above the best of them
#: on the (shared) validation rows.
EQUAL_MIXTURE_MAX_ROWS = 1_000


def _is_frame(X) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


def _declared_key(declared: dict, name, j: int):
    """The key under which ``declared`` (a parameter's dict) names column ``j``: its name, else its
    position, else None."""
    return name if name in declared else j if j in declared else None


def _pandas():
    try:
        import pandas
    except ImportError:  # an optional dependency: the other estimators need none of it
        raise ImportError("MixedDensity needs pandas: pip install 'skflow-density[tables]'") from None
    return pandas


class MixedDensity(DensityMixin, BaseEstimator):
    """Density of a table with categorical, integer, bounded and continuous columns.

    The density factorises exactly as ``p(x) = P(categorical columns) *
    p(numeric columns | categorical columns)``:

    - the categorical part is an autoregressive chain: the first column's
      smoothed frequencies, then a multinomial logistic regression of each
      column on the one-hot codes of those before it;
    - the numeric part is a flow: a :class:`MAFRegressor` given the one-hot
      categories where there are any (mixed with one Gaussian of all the
      numeric rows at weight 0.01, which bounds how far below that
      Gaussian a row unlike the training rows of its category can fall,
      and with a Student t of the same location and scatter at weight
      0.001, as :class:`MAFDensity` does), a :class:`MAFDensity` otherwise
      (which mixes in its own Gaussian and Student t).
      Up to 20,000 rows, three such flows are trained: from its Gaussian
      start, from the identity and over a normal base instead of the
      mixture base (``flow_params`` naming ``init`` leaves one, naming
      ``base`` drops the third).  Up to 1,000 rows the conditional part is
      their equal mixture with a fourth member, the Gaussian-mixture start
      of the numeric columns and the categories' codes conditioned on the
      codes (a validation split of a few dozen rows cannot tell which is
      best), above it the flow with the best held-out log-likelihood (the
      mixture again with ``early_stopping=False``).
      Integer columns, and continuous columns recorded on a grid (see
      :func:`skflow.preprocessing.grid_steps`), are dequantised (uniform
      noise across one grid step) and bounded columns mapped to the real
      line (beyond one bound a log or a soft log, which is a log near the
      bound and a shift far from it, whichever makes the column most
      Gaussian; a logit between two), the Jacobians of the maps included.
    - a continuous column with a point mass (a value many rows share, as
      a wage of 0 for those without work, beside a density over the other
      values) adds an indicator "at the point mass" to the categorical
      chain, whose probability is the mass's; the flow sees the other
      rows' values, and at the point mass a stand-in for the column drawn
      from a fixed Gaussian, independent of the rest, which scoring
      integrates out again (a fixed quadrature over 32 of its quantiles).

    Parameters
    ----------
    column_types : "auto" or dict, default="auto"
        Each column's kind: ``"categorical"``, ``"integer"`` or
        ``"continuous"``.  ``"auto"``: a DataFrame's category, object,
        string and bool columns are categorical, its integer columns
        integer, the rest continuous (numpy arrays: integer dtypes integer,
        the rest continuous).  A dict (column name or position to kind)
        overrides single columns.
    bounds : "auto", dict or None, default="auto"
        Bounds of numeric columns, as ``{column: (low, high)}`` with None
        for an open end; values must lie strictly inside, or within for a
        column on a grid (integer or recorded in steps), whose map's bounds
        are widened by half a step.  ``"auto"`` bounds below by 0 every
        numeric column whose training values are all non-negative (the
        zeros of a continuous column on no grid are then a point mass, see
        ``point_masses``); a dict adds to (and
        overrides) that rule, ``{column: None}`` unbounds one; None: no
        bounds at all.  Rows outside a bound score ``-inf``; draws always
        lie within (those of a continuous column on a grid are moved onto a
        bound they cross by less than half a step).  A point mass may lie
        on a bound (a wage of 0 beside positive ones: ``"auto"`` bounds the
        column by 0 when its other values are positive).
    point_masses : "auto", dict or None, default="auto"
        Point masses of continuous columns, as ``{column: value}``: rows at
        ``value`` are scored by the mass's probability (given the
        categories), the others by a density, and draws land on ``value``
        with that probability.  ``"auto"``: a continuous column on no grid
        whose most frequent training value is held by at least 5 % of the
        rows (and 5 rows), three times as many as hold any other value,
        beside at least two other values, has a point mass there, and so
        has one at 0 whose other values are positive, however few its
        zeros (they sit on the bound ``bounds="auto"`` gives it); a dict
        adds to (and overrides) that rule, ``{column: None}`` removes one;
        None: no point masses.
    flow_params : dict, default=None
        Parameters of the numeric part's flow (:class:`MAFRegressor` given
        categories, :class:`MAFDensity` without), e.g.
        ``{"n_flows": 3, "max_iter": 50}``.
    categorical_C : float, default=1.0
        Inverse L2 penalty of the categorical chain's logistic regressions.
    random_state : int, RandomState instance or None, default=None
        Seeds the dequantisation noise and the flow.

    Attributes
    ----------
    column_types_ : list of str
        The kind of each column.
    categories_ : dict
        Each categorical column's categories: a pandas ``Categorical``'s
        declared categories (those not seen in ``fit`` keep a small
        probability, see the user guide), else the values seen in ``fit``.
        A value outside them at scoring is an error.
    bounds_ : dict
        The bounds of each numeric column (in the data's units).
    point_masses_ : dict
        The value of each continuous column's point mass, by position.
    steps_ : dict
        The grid step of each integer column (draws are rounded to it).
    grid_steps_ : dict
        The grid step of each continuous column recorded on one (its
        training values are dequantised, its draws are not rounded).
    map_scales_ : dict
        For each numeric column with one bound, the scale ``s`` of its
        soft log ``z = s log(exp(d / s) - 1)`` (``d`` the distance to the
        bound), or None for the log ``z = log(d)``: the one under which
        the column's training values have the largest Gaussian
        log-likelihood in the data's units.
    categorical_model_ : object or None
        The chain of the categorical columns, then of the point masses'
        indicators (None without either).
    flows_ : list or None
        The numeric part: the conditional members whose equal mixture it
        is (given categories; the flows, and up to 1,000 rows the
        conditioned Gaussian mixture), or one flow (without); None without
        numeric columns.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Notes
    -----
    Units of :meth:`score_samples`: the log-probability of the categorical
    values (and of the point masses a row is at) plus the log-density of
    the other numeric values per unit of each numeric column.  Integer
    columns are scored as the density of their dequantised values at the
    value itself: with steps of 1 that approximates the log-probability of
    the value (a density averaged over the cell would be its lower bound,
    by Jensen's inequality).  An integer column that uses at most half the
    grid points between its smallest and largest value, each value held by
    10 rows on average (scaled test scores, years of schooling), is a
    lattice of its own: each value is dequantised over its cell (from the
    midpoint to the value below to the midpoint to the value above), its
    score is the density times the cell's width in steps, again the
    log-probability of the value, and draws land on the lattice.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skflow import MixedDensity
    >>> rng = np.random.RandomState(0)
    >>> colour = rng.choice(["red", "blue"], 400)
    >>> size = np.where(colour == "red", 2.0, 5.0) * rng.lognormal(0, 0.2, 400)
    >>> df = pd.DataFrame({"colour": pd.Categorical(colour), "size": size,
    ...                    "count": rng.poisson(3, 400)})
    >>> est = MixedDensity(flow_params={"n_flows": 2, "max_iter": 5}, random_state=0).fit(df)
    >>> est.column_types_
    ['categorical', 'continuous', 'integer']
    >>> draws = est.sample(5, random_state=0)
    >>> list(draws.dtypes.astype(str))
    ['category', 'float64', 'int64']
    >>> bool((draws["size"] > 0).all() and (draws["count"] >= 0).all())
    True
    """

    _parameter_constraints: dict = {
        "column_types": [StrOptions({"auto"}), dict],
        "bounds": [StrOptions({"auto"}), dict, None],
        "point_masses": [StrOptions({"auto"}), dict, None],
        "flow_params": [dict, None],
        "categorical_C": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, column_types="auto", bounds="auto", point_masses="auto", flow_params=None,
                 categorical_C=1.0, random_state=None):
        self.column_types = column_types
        self.bounds = bounds
        self.point_masses = point_masses
        self.flow_params = flow_params
        self.categorical_C = categorical_C
        self.random_state = random_state

    # ------------------------------------------------------------- columns
    def _frame(self, X, reset: bool):
        """``X`` as a DataFrame (a numpy array's columns named by position)."""
        pd = _pandas()
        if _is_frame(X):
            frame = X
            if frame.shape[1] == 0:
                raise ValueError("X has 0 feature(s); at least 1 is required")
            if len(frame) < (2 if reset else 1):
                raise ValueError(f"MixedDensity needs at least 2 rows to fit, got n_samples={len(frame)}")
        else:  # arrays are numbers (their columns integer or continuous); tables with text are DataFrames
            frame = pd.DataFrame(check_array(X, dtype="numeric", ensure_min_samples=2 if reset else 1))
        # scikit-learn's own checks of the number and names of columns (and their messages)
        _check_feature_names(self, X, reset=reset)
        _check_n_features(self, frame, reset=reset)
        return frame

    def _column_bounds(self, frame, kinds) -> dict:
        declared = {} if self.bounds in ("auto", None) else dict(self.bounds)
        names = list(frame.columns)
        bounds = {}
        for j, (name, kind) in enumerate(zip(names, kinds)):
            if kind == "categorical":
                continue
            key = _declared_key(declared, name, j)
            if key is not None:
                bound = declared.pop(key)
                bounds[j] = (None, None) if bound is None else tuple(bound)
                if len(bounds[j]) != 2:
                    raise ValueError(f"bounds[{key!r}] must be (low, high), got {bound!r}")
                continue
            values = frame.iloc[:, j].to_numpy(dtype=np.float64)
            mass = self.point_masses_.get(j)
            if mass is not None:  # the other values decide; the mass may lie on the bound
                values = values[values != mass] if mass >= 0 else values[:0]
            if self.bounds is None or len(values) == 0:
                bounds[j] = (None, None)
            elif values.min() > 0 or (values.min() == 0 and (j in self.steps_ or j in self.grid_steps_)):
                bounds[j] = (0, None)
            else:
                bounds[j] = (None, None)
        if declared:
            raise ValueError(f"bounds names column(s) {sorted(map(str, declared))} that are not numeric columns of X")
        return bounds

    def _column_point_masses(self, frame, kinds) -> dict:
        declared = {} if self.point_masses in ("auto", None) else dict(self.point_masses)
        masses = {}
        for j, name in enumerate(frame.columns):
            key = _declared_key(declared, name, j)
            if key is not None:
                value = declared.pop(key)
                if kinds[j] != "continuous":
                    raise ValueError(f"point_masses names column {key!r}, which is {kinds[j]}: point masses are "
                                     "for continuous columns (an integer column's values each have a probability "
                                     "already)")
                if value is not None:
                    if not np.isfinite(value):
                        raise ValueError(f"point_masses[{key!r}] must be a finite number, got {value!r}")
                    masses[j] = float(value)
            elif self.point_masses is not None and kinds[j] == "continuous" and j not in self.grid_steps_:
                values = frame.iloc[:, j].to_numpy(dtype=np.float64)
                value = find_point_mass(values)
                if value is None and values.min() == 0 and np.count_nonzero(values) >= 2 \
                        and self._bounded_by_rule(j, name):
                    # Exact zeros of a column otherwise positive sit on the bound that
                    # bounds="auto" gives it: an atom there, however few, or no bound at all.
                    value = 0.0
                if value is not None:
                    masses[j] = value
        if declared:
            raise ValueError(f"point_masses names column(s) {sorted(map(str, declared))} that X does not have")
        return masses

    def _bounded_by_rule(self, j: int, name) -> bool:
        """Whether column ``j``'s bounds come from the "auto" rule (not declared, not switched off)."""
        return self.bounds == "auto" or (isinstance(self.bounds, dict) and _declared_key(self.bounds, name, j) is None)

    def _point_mass_positions(self) -> list[int]:
        """Positions among the numeric columns of those with a point mass."""
        masses = getattr(self, "point_masses_", {})  # files from before point masses have none
        return [k for k, j in enumerate(self._numeric_columns) if j in masses]

    def _maps(self):
        """The map of each numeric column (bounds of columns on a grid widened by half a step)."""
        maps = {}
        scales = getattr(self, "map_scales_", {})  # files from before the soft log: every one-sided map a log
        for j, (low, high) in self.bounds_.items():
            half = self.steps_.get(j, self.grid_steps_.get(j, 0.0)) / 2
            maps[j] = ColumnMap(None if low is None else low - half, None if high is None else high + half,
                                scales.get(j))
        return maps

    def _codes(self, frame, allow_unseen: bool = False) -> np.ndarray:
        return np.column_stack([self._encode(j, frame.iloc[:, j], allow_unseen) for j in self._categorical])

    def _encode(self, j: int, values, allow_unseen: bool = False) -> np.ndarray:
        """The codes of categorical column ``j``'s ``values``; a value outside its categories is
        the code -1 with ``allow_unseen``, else a clear error."""
        lookup = {v: i for i, v in enumerate(self.categories_[self._name(j)])}
        values = values.to_numpy(dtype=object)
        codes = np.array([lookup.get(v, -1) for v in values], dtype=np.int64)
        if not allow_unseen and (codes < 0).any():
            raise ValueError(f"column {self._name(j)!r} has category {values[np.argmax(codes < 0)]!r}, not seen "
                             f"in fit (known: {list(lookup)})")
        return codes

    def _name(self, j: int):
        names = getattr(self, "feature_names_in_", None)
        return j if names is None else names[j]

    def _numeric_values(self, frame, noise=None) -> tuple[np.ndarray, np.ndarray]:
        """The numeric columns in the data's units, dequantised with ``noise`` (a RandomState) where given,
        and which values are at their column's point mass (those are left as they are)."""
        x = np.empty((len(frame), len(self._numeric_columns)))
        at_mass = np.zeros(x.shape, dtype=bool)
        masses = getattr(self, "point_masses_", {})
        maps = self._maps()
        for k, j in enumerate(self._numeric_columns):
            x[:, k] = frame.iloc[:, j].to_numpy(dtype=np.float64)
            if j in masses:
                at_mass[:, k] = x[:, k] == masses[j]
            step = self.steps_.get(j, self.grid_steps_.get(j, 0.0))
            if noise is not None and step:
                spread = ~at_mass[:, k]
                width = step
                lattice = getattr(self, "_lattices", {}).get(j)
                if lattice is not None:  # each value spread over its own cell, centred on the cell
                    low, high = lattice_cells(lattice, step)
                    cell = np.searchsorted(lattice, x[:, k])
                    x[:, k], width = (low[cell] + high[cell]) / 2, (high - low)[cell][spread]
                x[spread, k] += noise.uniform(-0.5, 0.5, size=int(spread.sum())) * width
                x[:, k] = maps[j].clip(x[:, k])  # a grid value within half a step of a declared bound stays inside
        return x, at_mass

    def _numeric(self, x, at_mass):
        """The numeric values ``x`` mapped to the real line, their log-Jacobian per row, and rows outside a bound;
        values at a point mass (``at_mass``) are mapped from a placeholder, without a Jacobian."""
        maps = self._maps()
        z = np.empty_like(x)
        log_jacobian = np.zeros(len(x))
        outside = np.zeros(len(x), dtype=bool)
        for k, j in enumerate(self._numeric_columns):
            values = x[:, k].copy()
            ok = maps[j].inside(values) | at_mass[:, k]
            outside |= ~ok
            replaced = ~ok | at_mass[:, k]
            values[replaced] = maps[j].some_inside()  # any value inside: -inf or a stand-in later
            z[:, k], jac = maps[j].forward(values)
            jac[at_mass[:, k]] = 0.0
            log_jacobian += jac + self._lattice_log_widths(j, x[:, k])
        return z, log_jacobian, outside

    def _lattice_log_widths(self, j: int, values) -> np.ndarray:
        """``log(cell width / step)`` of the values of a column on a sparse lattice that lie on it (0 elsewhere):
        its density at a value times the value's cell is the value's probability, in the units of one step."""
        lattice = getattr(self, "_lattices", {}).get(j)
        out = np.zeros(len(values))
        if lattice is not None:
            low, high = lattice_cells(lattice, self.steps_[j])
            cell = np.minimum(np.searchsorted(lattice, values), len(lattice) - 1)
            on = lattice[cell] == values
            out[on] = np.log((high - low)[cell[on]] / self.steps_[j])
        return out

    def _one_sided_scales(self, x, at_mass) -> dict:
        """Per numeric column with one bound, its map's soft-log scale (None: the log) from the training values
        ``x`` that are not at a point mass."""
        scales, maps = {}, self._maps()
        for k, j in enumerate(self._numeric_columns):
            m = maps[j]
            values = x[~at_mass[:, k], k]
            if (m.low is None) != (m.high is None) and len(values) > 1:
                scales[j] = one_sided_scale(values, m.low, m.high)
        return scales

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)  # the inner flow validates its own parameters
    def fit(self, X: ArrayLike, y: None = None):
        """Fit the categorical chain and the numeric flow to the table ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : None
            Ignored, present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        frame = self._frame(X, reset=True)
        kinds = infer_column_types(frame, {} if self.column_types == "auto" else self.column_types)
        self.column_types_ = kinds
        self._categorical = [j for j, k in enumerate(kinds) if k == "categorical"]
        self._numeric_columns = [j for j, k in enumerate(kinds) if k != "categorical"]
        # dtype names, not dtype objects: a skops file stores plain values only
        self._dtypes = ["category" if isinstance(d, _pandas().CategoricalDtype) else str(d) for d in frame.dtypes]
        self._ordered = [bool(getattr(d, "ordered", False)) for d in frame.dtypes]
        for j in self._numeric_columns:
            values = frame.iloc[:, j]
            if values.dtype.kind not in "biuf":
                raise ValueError(f"column {frame.columns[j]!r} is {kinds[j]} but holds {values.dtype} values")
            if not np.isfinite(values.to_numpy(dtype=np.float64)).all():
                raise ValueError(f"column {frame.columns[j]!r} holds NaN or infinite values; impute or drop them first")
        names = [self._name(j) for j in range(len(kinds))]
        self.categories_ = {}
        for j in self._categorical:
            values = frame.iloc[:, j]
            if values.isna().any():
                raise ValueError(f"column {names[j]!r} holds missing values; give them a category of their own first")
            declared = getattr(values.dtype, "categories", None)  # a pandas Categorical's, seen or not
            seen = declared.tolist() if declared is not None else \
                sorted(set(values.to_numpy(dtype=object).tolist()), key=lambda v: (str(type(v)), v))
            self.categories_[names[j]] = np.asarray(seen, dtype=object)
        self.steps_ = {j: integer_step(frame.iloc[:, j].to_numpy()) for j in self._numeric_columns
                       if kinds[j] == "integer"}
        self._lattices = {j: lattice for j, lattice in
                          ((j, sparse_lattice(frame.iloc[:, j].to_numpy(), step)) for j, step in self.steps_.items())
                          if lattice is not None}
        continuous = [j for j in self._numeric_columns if kinds[j] == "continuous"]
        found = grid_steps(frame.iloc[:, continuous].to_numpy(dtype=np.float64)) if continuous else []
        self.grid_steps_ = {j: float(step) for j, step in zip(continuous, found) if step > 0}
        self.point_masses_ = self._column_point_masses(frame, kinds)
        self.bounds_ = self._column_bounds(frame, kinds)
        maps = self._maps()
        for j in self._numeric_columns:
            x = frame.iloc[:, j].to_numpy(dtype=np.float64)
            mass = self.point_masses_.get(j)
            if not maps[j].inside(x if mass is None else x[x != mass]).all():
                raise ValueError(f"column {names[j]!r} has values outside its bounds {self.bounds_[j]}")
            low, high = self.bounds_[j]
            if mass is not None and ((low is not None and mass < low) or (high is not None and mass > high)):
                raise ValueError(f"column {names[j]!r} has its point mass {mass} outside its bounds {self.bounds_[j]}")

        rng = private_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        noise = np.random.RandomState(seed)
        x, at_mass = self._numeric_values(frame, noise) if self._numeric_columns else (None, None)
        codes = self._chain_codes(frame, at_mass)
        self.categorical_model_ = None
        if codes is not None:
            self.categorical_model_ = CategoricalChain(self._chain_sizes(), C=self.categorical_C).fit(codes)
        self.flows_ = None
        self.map_scales_ = {}
        if self._numeric_columns:
            self.map_scales_ = self._one_sided_scales(x, at_mass)
            z, _, _ = self._numeric(x, at_mass)
            self._stand_ins = self._stand_in_gaussians(z, at_mass)
            for (mean, scale), k in zip(self._stand_ins, self._point_mass_positions()):
                on = at_mass[:, k]
                z[on, k] = mean + scale * noise.standard_normal(int(on.sum()))
            params = {"random_state": seed, **(self.flow_params or {})}
            if self.categorical_model_ is not None:
                self.flows_ = self._fit_conditional(params, self._context(codes), z)
                self.numeric_mean_ = z.mean(0)
                self.numeric_covariance_ = add_ridge(np.atleast_2d(np.cov(z.T, bias=True)))
            else:
                self.flows_ = [MAFDensity(**params).fit(z)]
        return self

    def _chain_codes(self, frame, at_mass, allow_unseen: bool = False):
        """The codes of the chain: the categorical columns', then 1 where a row is at a column's point mass
        (None without either)."""
        parts = [self._codes(frame, allow_unseen)] if self._categorical else []
        positions = self._point_mass_positions()
        if positions:
            parts.append(at_mass[:, positions].astype(np.int64))
        return np.column_stack(parts) if parts else None

    def _chain_sizes(self) -> list[int]:
        return [len(self.categories_[self._name(j)]) for j in self._categorical] + \
            [2] * len(self._point_mass_positions())

    def _stand_in_gaussians(self, z, at_mass) -> np.ndarray:
        """Per column with a point mass, the mean and spread of its other values on the real line: the Gaussian
        of the stand-ins the flow sees at the mass, shape ``(n_point_masses, 2)``."""
        rows = []
        for k in self._point_mass_positions():
            others = z[~at_mass[:, k], k]
            spread = float(others.std()) if len(others) > 1 else 0.0
            rows.append((others.mean() if len(others) else 0.0, spread if spread > 0 else 1.0))
        return np.array(rows).reshape(-1, 2)

    def _given_codes(self, given, names) -> np.ndarray:
        """The codes of ``given``'s columns, which must be the first categorical columns in order."""
        if not _is_frame(given):
            raise TypeError("given must be a DataFrame whose columns are the first categorical columns")
        wanted = [names[j] for j in self._categorical[: given.shape[1]]]
        if [str(c) for c in given.columns] != [str(w) for w in wanted] or given.shape[1] == 0:
            raise ValueError(f"given must hold the first categorical columns in order ({wanted or 'none'} for "
                             f"{given.shape[1]} column(s)), got {list(given.columns)}: the chain's order makes only "
                             "those conditionals exact")
        return np.column_stack([self._encode(j, given.iloc[:, k])
                                for k, j in enumerate(self._categorical[: given.shape[1]])])

    def _fit_conditional(self, params, context, z) -> list:
        """The conditional flows of ``z`` given ``context`` whose equal mixture is the numeric part."""
        flows = [MAFRegressor(**params).fit(context, z)]
        chosen = set(self.flow_params or {})
        if len(z) <= THREE_STARTS_MAX_ROWS and "init" not in chosen:
            flows.append(MAFRegressor(**{**params, "init": "identity"}).fit(context, z))
            if "base" not in chosen:
                flows.append(MAFRegressor(**{**params, "base": "normal"}).fit(context, z))
        # On a few hundred rows no start wins everywhere and the validation
        # rows are too few to pick one; their mixture is never far below the
        # best of them and often above it.  On more rows the validation
        # rows (the same for every start: the seeds are shared) pick one.
        scores = [flow.best_validation_score_ for flow in flows]
        if len(z) > EQUAL_MIXTURE_MAX_ROWS and None not in scores:
            return [flows[int(np.argmax(scores))]]
        if len(flows) > 1:  # the starts' mixture: with the one start that needs no training
            flows.append(ConditionalGaussianMixture(self.categorical_model_.sizes, params["random_state"])
                         .fit(context, z))
        return flows

    def _conditional_log_prob(self, context, z) -> np.ndarray:
        """Log-density of ``z`` given ``context`` under the equal mixture of :attr:`flows_`."""
        members = np.stack([flow.log_prob(context, z) for flow in self.flows_])
        return logsumexp(members, axis=0) - np.log(len(self.flows_))

    def _conditional_sample(self, context, rng) -> np.ndarray:
        """One draw of the numeric part per row of ``context``, each from a member of :attr:`flows_` drawn at random."""
        member = rng.randint(len(self.flows_), size=len(context))
        z = np.empty((len(context), len(self._numeric_columns)))
        for k, flow in enumerate(self.flows_):
            rows = np.flatnonzero(member == k)
            if len(rows):
                seed = int(rng.randint(np.iinfo(np.int32).max))
                z[rows] = flow.sample(context[rows], n_samples=1, random_state=seed).reshape(len(rows), -1)
        return z

    def _context(self, codes):
        return one_hot(codes, self.categorical_model_.sizes)

    # -------------------------------------------------------------- scoring
    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log-probability of each row's categories plus the log-density of its numeric values.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The columns seen in ``fit``; categories must be ones seen there.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            In the units the class notes describe; ``-inf`` for rows outside
            a bound.
        """
        return self._log_density(X, allow_unseen=False)

    def _log_density(self, X, allow_unseen: bool) -> np.ndarray:
        """:meth:`score_samples`; with ``allow_unseen`` a row with a category not seen in fit scores ``-inf``."""
        check_is_fitted(self)
        frame = self._frame(X, reset=False)
        out = np.zeros(len(frame))
        unknown = np.zeros(len(frame), dtype=bool)
        x, at_mass = self._numeric_values(frame) if self._numeric_columns else (None, None)
        codes = self._chain_codes(frame, at_mass, allow_unseen)
        if codes is not None:
            unknown = (codes < 0).any(axis=1)
            codes[unknown] = 0  # any known category: the row scores -inf anyway
            out += self.categorical_model_.log_prob(codes)
        if self._numeric_columns:
            z, log_jacobian, outside = self._numeric(x, at_mass)
            out += self._numeric_log_density(codes, z, at_mass) + log_jacobian
            out[outside] = -np.inf
        out[unknown] = -np.inf
        return out

    def _numeric_log_density(self, codes, z, at_mass) -> np.ndarray:
        """Log-density of the numeric part given the chain's ``codes``; at a point mass the stand-in is integrated
        out (see :mod:`._point_masses`)."""
        positions = self._point_mass_positions()
        at_any = at_mass[:, positions].any(axis=1) if positions else np.zeros(len(z), dtype=bool)
        out = np.empty(len(z))
        if not at_any.all():
            plain = ~at_any
            out[plain] = self._numeric_log_density_at(None if codes is None else codes[plain], z[plain])
        rows = np.flatnonzero(at_any)
        if len(rows) == 0:
            return out
        nodes = quadrature_nodes(len(positions))
        for chunk in np.array_split(rows, -(-len(rows) // 4096)):  # bounded memory: len(nodes) copies of a chunk
            zs = np.repeat(z[chunk], len(nodes), axis=0)
            log_q = np.zeros(len(zs))
            for i, (k, (mean, scale)) in enumerate(zip(positions, self._stand_ins)):
                on = np.repeat(at_mass[chunk, k], len(nodes))
                e = np.tile(nodes[:, i], len(chunk))[on]
                zs[on, k] = mean + scale * e
                log_q[on] += -0.5 * e**2 - 0.5 * np.log(2 * np.pi) - np.log(scale)
            joint = self._numeric_log_density_at(np.repeat(codes[chunk], len(nodes), axis=0), zs) - log_q
            out[chunk] = logsumexp(joint.reshape(len(chunk), len(nodes)), axis=1) - np.log(len(nodes))
        return out

    def _numeric_log_density_at(self, codes, z) -> np.ndarray:
        """Log-density of ``z`` on the real line given the chain's ``codes`` (None without a chain)."""
        if self.categorical_model_ is None:
            return self.flows_[0].score_samples(z)
        gaussian, student = gaussian_and_t_log_pdfs(z, self.numeric_mean_, self.numeric_covariance_)
        return defended(np.logaddexp(
            np.log1p(-GAUSSIAN_WEIGHT_FLOOR) + self._conditional_log_prob(self._context(codes), z),
            np.log(GAUSSIAN_WEIGHT_FLOOR) + gaussian), student)

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Mean of :meth:`score_samples` over the rows of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples: int = 1, random_state=None, given=None):
        """Draw rows: categories from the chain, then numeric values given them.

        Parameters
        ----------
        n_samples : int, default=1
            Ignored when ``given`` is set (one draw per row of it).
        random_state : int, RandomState instance or None, default=None
        given : DataFrame, default=None
            Conditional sampling: values of the first categorical columns
            (in the table's order, as many as given; the chain's order makes
            exactly those conditionals available), one row per draw; the
            other categorical columns are drawn given them, then the
            numeric columns given all categories.

        Returns
        -------
        X : DataFrame (when fitted on one) or ndarray of shape (n_samples, n_features)
            The columns, dtypes and categories of the training table;
            numeric values inside their bounds, integer columns on their
            grid.
        """
        pd = _pandas()
        check_is_fitted(self)
        names = [self._name(j) for j in range(self.n_features_in_)]
        fixed = None
        if given is not None:
            fixed, n_samples = self._given_codes(given, names), len(given)
        check_n_samples(n_samples, self.n_features_in_)
        if not isinstance(n_samples, Integral):
            raise TypeError(f"n_samples must be an integer, got {n_samples!r}")
        rng = private_random_state(random_state)
        n = int(n_samples)
        columns = {}
        codes = None
        if self.categorical_model_ is not None:
            codes = self.categorical_model_.sample(n, rng, fixed)
            for k, j in enumerate(self._categorical):
                columns[j] = self.categories_[names[j]][codes[:, k]]
        if self._numeric_columns:
            if self.categorical_model_ is not None:
                z = self._conditional_sample(self._context(codes), rng)
                wide = rng.uniform(size=n) < GAUSSIAN_WEIGHT_FLOOR  # the rows drawn from the mixed-in Gaussian
                z[wide] = rng.multivariate_normal(self.numeric_mean_, self.numeric_covariance_, int(wide.sum()))
                far = rng.uniform(size=n) < DEFENSIVE_WEIGHT  # the rows drawn from the defensive Student t
                k = int(far.sum())
                z[far] = student_t_draws(rng.standard_normal((k, z.shape[1])), 1.0 - rng.uniform(size=k),
                                         self.numeric_mean_, np.linalg.cholesky(self.numeric_covariance_))
            else:
                seed = int(rng.randint(np.iinfo(np.int32).max))
                z = self.flows_[0].sample(n, random_state=seed).reshape(n, -1)
            maps = self._maps()
            for k, j in enumerate(self._numeric_columns):
                x = maps[j].inverse(z[:, k])
                low, high = self.bounds_[j]
                lattice = getattr(self, "_lattices", {}).get(j)
                if lattice is not None:  # the lattice value whose cell holds the draw
                    x = lattice[np.searchsorted(lattice_cells(lattice, self.steps_[j])[1][:-1], x)]
                elif j in self.steps_:
                    x = np.round(x / self.steps_[j]) * self.steps_[j]
                if j in self.steps_ or j in self.grid_steps_:  # within half a step beyond a bound: onto it
                    x = np.clip(x, -np.inf if low is None else low, np.inf if high is None else high)
                columns[j] = x
            for i, k in enumerate(self._point_mass_positions()):
                j = self._numeric_columns[k]
                columns[j][codes[:, len(self._categorical) + i] == 1] = self.point_masses_[j]
        if not hasattr(self, "feature_names_in_") and not any(k == "categorical" for k in self.column_types_):
            return np.column_stack([columns[j] for j in range(self.n_features_in_)])
        frame = pd.DataFrame({names[j]: columns[j] for j in range(self.n_features_in_)})
        for j, dtype in enumerate(self._dtypes):
            if dtype == "category":  # its categories are categories_, declared ones included
                frame[names[j]] = pd.Categorical(frame[names[j]], categories=list(self.categories_[names[j]]),
                                                 ordered=self._ordered[j])
            else:
                frame[names[j]] = frame[names[j]].astype(dtype)
        return frame
