"""The fault cases of issue 29: each test fails without its fix."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import zipfile

import numpy as np
import pytest
import torch

from skflow import MAFClassifier, MAFDensity, MAFOutlierDetector, MAFRegressor
from skflow.cli import main
from skflow.estimators._validation import FewRowsWarning
from skflow.estimators._saved_state import DamagedModelError
from skflow.io import atomic_write, load_model, save_model

TINY = dict(n_flows=2, hidden_layer_sizes=(8,), max_iter=2, random_state=0)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------- 1. multi-worker scoring
@pytest.mark.parametrize("layer_type", ["affine", "spline", "affine_spline"])
@pytest.mark.parametrize("base", ["normal", "made_mog"])
def test_multi_worker_scoring_matches_one_thread(layer_type, base, two_threads):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 3))
    est = MAFDensity(**TINY, layer_type=layer_type, base=base, n_components=3).fit(X)
    Z = rng.normal(size=(40_000, 3))  # many chunks: the thread pool scores them
    many = est.score_samples(Z)
    torch.set_num_threads(1)
    np.testing.assert_allclose(many, est.score_samples(Z), rtol=1e-5, atol=1e-5)


def test_regressor_scores_many_rows_with_the_mixture_base(two_threads):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(2000, 4))
    reg = MAFRegressor(n_flows=2, max_iter=2, random_state=0).fit(X[:, :3], X[:, 3])
    Z = rng.normal(size=(20000, 4))
    assert np.isfinite(reg.log_prob(Z[:, :3], Z[:, 3])).all()


# ------------------------------------------------------------ 6. threads
def test_a_thread_started_during_a_small_call_keeps_the_process_thread_count(two_threads):
    from skflow.nn.threads import intra_op_threads

    inside, seen = threading.Event(), []
    done = threading.Event()

    def small_call():
        with intra_op_threads(1):
            assert torch.get_num_threads() == 1
            inside.set()
            done.wait(10)

    def newcomer():
        inside.wait(10)
        seen.append(torch.get_num_threads())  # its first torch call
        done.set()

    threads = [threading.Thread(target=small_call), threading.Thread(target=newcomer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [2] and torch.get_num_threads() == 2


# --------------------------------------------------------- 2. atomic files
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "m.joblib"
    target.write_bytes(b"old model")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half a new mod")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old model"
    assert os.listdir(tmp_path) == ["m.joblib"]


def test_without_overwrite_an_existing_file_is_kept(tmp_path):
    target = tmp_path / "m.skops"
    target.write_bytes(b"first")
    with pytest.raises(FileExistsError):
        save_model(MAFDensity(), target, overwrite=False)
    assert target.read_bytes() == b"first"


def _run(code, *args):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("suffix", [".skops", ".joblib"])
def test_sigkill_during_a_save_leaves_the_previous_model_whole(tmp_path, suffix):
    X = np.random.RandomState(0).normal(size=(200, 2))
    target = tmp_path / f"m{suffix}"
    old = MAFDensity(**TINY).fit(X)
    save_model(old, target)
    # A child that starts saving a model and stalls half-way through the file.
    child = _run("""
        import sys, time, numpy as np, joblib, skops.io
        from skflow import MAFDensity
        from skflow.io import save_model
        model = MAFDensity(n_flows=2, hidden_layer_sizes=(8,), max_iter=2, random_state=1)
        model.fit(np.random.RandomState(1).normal(size=(200, 2)))
        real = {"joblib": joblib.dump, "skops": skops.io.dump}
        def stalled(kind):
            def dump(obj, f, *a, **k):
                f.write(b"PK\\x03\\x04 half a model")
                f.flush()
                print("writing", flush=True)
                time.sleep(60)
            return dump
        joblib.dump, skops.io.dump = stalled("joblib"), stalled("skops")
        save_model(model, sys.argv[1])
    """, target)
    try:
        assert child.stdout.readline().strip() == "writing", child.stderr.read()
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    np.testing.assert_array_equal(load_model(target).score_samples(X), old.score_samples(X))


def test_two_exclusive_writers_exactly_one_wins(tmp_path):
    target = tmp_path / "race.joblib"
    code = """
        import sys, time
        from skflow.io import save_model
        start = float(sys.argv[2])
        while time.time() < start:
            pass
        try:
            save_model({"writer": sys.argv[3], "payload": bytes(2_000_000)}, sys.argv[1], overwrite=False)
        except FileExistsError:
            print("refused")
        else:
            print("saved")
    """
    start = time.time() + 3
    children = [_run(code, target, start, name) for name in "ab"]
    outcomes = sorted(c.communicate(timeout=60)[0].strip() for c in children)
    assert outcomes == ["refused", "saved"]
    assert sorted(os.listdir(tmp_path)) == ["race.joblib"]


def test_cli_without_force_refuses_a_file_created_during_the_fit(tmp_path, monkeypatch):
    data = tmp_path / "d.npy"
    np.save(data, np.random.RandomState(0).normal(size=(100, 2)))
    out = tmp_path / "m.skops"
    real_fit = MAFDensity.fit

    def fit_while_someone_saves(self, *args, **kwargs):
        out.write_bytes(b"the other writer's model")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(MAFDensity, "fit", fit_while_someone_saves)
    assert main(["fit", str(data), "-o", str(out), "--max-iter", "1", "--quiet"]) == 2
    assert out.read_bytes() == b"the other writer's model"


# ----------------------------------------------------- 3. edited files
def _edit_skops(path, fields, content):
    """Rewrite every node named in ``fields`` of a .skops file's schema to hold
    ``content`` (skops stores a shared object once: edit every name it has)."""
    with zipfile.ZipFile(path) as z:
        files = {name: z.read(name) for name in z.namelist()}
    schema = json.loads(files["schema.json"])

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in fields:
                    node[key] = content(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)


def _set_items(value, text):
    value = json.loads(json.dumps(value))
    for item in value["content"]:
        item["content"] = text
    return value


@pytest.mark.parametrize("field, content, match", [
    (("hidden_sizes", "hidden_layer_sizes"), lambda v: _set_items(v, "100000"), "hidden_sizes"),
    (("dtype",), lambda v: {**v, "content": '"float16"'}, "dtype"),
    (("n_flows",), lambda v: {**v, "content": "7"}, "damaged or edited"),
])
def test_edited_skops_values_are_refused_before_anything_is_built(tmp_path, field, content, match):
    path = tmp_path / "m.skops"
    save_model(MAFDensity(**TINY).fit(np.random.RandomState(0).normal(size=(100, 2))), path)
    _edit_skops(path, field, content)
    with pytest.raises(DamagedModelError, match=match):
        load_model(path)
    assert main(["score", str(path), str(path)]) == 2  # the CLI: one line, no traceback


# ------------------------------------------------------- 4. any units
@pytest.mark.parametrize("scale", [1e-8, 1e8, np.array([1e-8, 1.0, 1e8])])
@pytest.mark.parametrize("Estimator", [MAFDensity, MAFOutlierDetector])
def test_densities_are_scale_equivariant(Estimator, scale):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1.0]])
    unit = Estimator(**TINY).fit(X)
    scaled = Estimator(**TINY).fit(X * scale)
    shift = np.log(np.broadcast_to(scale, (3,))).sum()
    np.testing.assert_allclose(scaled.score_samples(X * scale) + shift, unit.score_samples(X), atol=1e-6)
    np.testing.assert_allclose(scaled.sample(50, random_state=0) / scale, unit.sample(50, random_state=0),
                               rtol=1e-6, atol=1e-6)


def test_float32_data_far_from_zero_keep_their_digits():
    X = np.random.RandomState(0).normal(size=(400, 2))
    unit = MAFDensity(**TINY).fit(X)
    far = MAFDensity(**TINY).fit(X + 1e8)
    np.testing.assert_allclose(far.score_samples(X + 1e8), unit.score_samples(X), atol=1e-5)


def test_classifier_accuracy_does_not_depend_on_units():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    accuracy = [MAFClassifier(**TINY).fit(X * c, y).score(X * c, y) for c in (1.0, 1e-8)]
    assert accuracy[0] > 0.9 and accuracy[0] == accuracy[1]


# ------------------------------------------------- 5. and 8. extreme rows
def test_extreme_rows_give_documented_values_not_nan():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] > 0).astype(int)
    density = MAFDensity(**TINY).fit(X)
    scores = density.score_samples(np.array([[1e300, 0.0], [1e20, 0.0], [0.0, 0.0]]))
    assert np.all(scores[:2] == -np.inf) and np.isfinite(scores[2])  # 1e20: beyond float32, not float64
    clf = MAFClassifier(**TINY).fit(X, y)
    far = np.array([[1e20, 0.0]])
    np.testing.assert_allclose(clf.predict_proba(far), clf.class_prior_[None])  # no class explains it
    reg = MAFRegressor(**TINY).fit(X[:, :1], X[:, 1])
    with pytest.raises(ValueError, match="row 0 of X"):
        reg.predict(np.array([[1e300]]))
    log_prob = reg.log_prob(np.array([[1e300], [0.0]]), np.array([0.0, 0.0]))
    assert log_prob[0] == -np.inf and np.isfinite(log_prob[1])


def test_huge_targets_and_features_are_standardised_not_lost():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(300, 1))
    y = 2 * x[:, 0] + 0.1 * rng.normal(size=300)
    base = MAFRegressor(**TINY).fit(x, y).score(x, y)
    assert np.isfinite(MAFRegressor(**TINY).fit(x, y * 1e160).predict(x)).all()
    assert MAFRegressor(**TINY).fit(x * 1e170, y).score(x * 1e170, y) == pytest.approx(base, abs=1e-6)


def test_bad_priors_and_zero_draws_are_named():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 2))
    y = np.arange(100) % 2
    with pytest.raises(ValueError, match="priors gives class 0 probability 0"):
        MAFClassifier(**TINY, priors=[0.0, 1.0]).fit(X, y)
    reg = MAFRegressor(**TINY).fit(X[:, :1], X[:, 1])
    assert reg.sample(X[:3, :1], n_samples=0).shape == (3, 0)


def test_cli_turns_unexpected_errors_into_one_line(tmp_path, capsys, monkeypatch):
    import skflow.cli

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(skflow.cli, "_demo", boom)
    parser = skflow.cli.build_parser()
    monkeypatch.setattr(skflow.cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():
        if action.get_default("func") is not None and action.prog.endswith("demo"):
            action.set_defaults(func=boom)
    assert main(["demo"]) == 1
    err = capsys.readouterr().err
    assert "KeyError" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------- 7. wide data
def test_wide_data_select_the_shrinkage_in_the_row_space():
    from skflow.estimators._gaussian import SHRINKAGES, gaussian_log_pdfs, shrink_to_identity
    from skflow.estimators._gaussian import spectral_log_pdfs

    rng = np.random.RandomState(0)
    for n, d in [(30, 5), (8, 40)]:  # more rows than columns, and fewer
        fit, test = rng.normal(size=(n, d)), rng.normal(size=(6, d))
        mean = fit.mean(0)
        cov = (fit - mean).T @ (fit - mean) / n
        dense = np.stack([shrink_to_identity(cov, s) for s in SHRINKAGES])
        expected = gaussian_log_pdfs(test, mean[None], dense[:, None])[:, :, 0]
        np.testing.assert_allclose(spectral_log_pdfs(fit - mean, test - mean, SHRINKAGES), expected,
                                   rtol=1e-7, atol=1e-6)


# ----------------------------------------------------- 9, 10, 11, 12
def test_a_sample_larger_than_memory_is_refused_before_allocating():
    est = MAFDensity(**TINY).fit(np.random.RandomState(0).normal(size=(100, 2)))
    with pytest.raises(ValueError, match="GiB"):
        est.sample(10**15)
    clf = MAFClassifier(**TINY).fit(np.random.RandomState(0).normal(size=(100, 2)), np.arange(100) % 2)
    with pytest.raises(ValueError, match="GiB"):
        clf.sample(10**15)


def test_load_model_takes_a_regressor(tmp_path):
    X = np.random.RandomState(0).normal(size=(100, 2))
    reg = MAFRegressor(**TINY).fit(X[:, :1], X[:, 1])
    for name in ("r.skops", "r.joblib"):
        save_model(reg, tmp_path / name)
        np.testing.assert_array_equal(load_model(tmp_path / name).log_prob(X[:, :1], X[:, 1]),
                                      reg.log_prob(X[:, :1], X[:, 1]))


def test_unseeded_fits_and_draws_leave_numpy_global_state_alone():
    X = np.random.RandomState(0).normal(size=(100, 2))
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    est = MAFDensity(n_flows=1, hidden_layer_sizes=(4,), max_iter=1).fit(X)
    est.sample(3)
    MAFClassifier(n_flows=1, hidden_layer_sizes=(4,), max_iter=1).fit(X, np.arange(100) % 2).sample(3)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_fits_on_a_handful_of_rows_warn():
    X = np.random.RandomState(0).normal(size=(3, 3))
    with pytest.warns(FewRowsWarning, match="3 rows of 3 features"):
        MAFDensity(**TINY).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewRowsWarning)
        MAFDensity(**TINY).fit(np.random.RandomState(0).normal(size=(50, 3)))


def test_a_point_mass_on_no_grid_warns_and_names_the_column():
    from skflow.estimators._validation import PointMassWarning

    rng = np.random.RandomState(0)
    wage = np.where(rng.uniform(size=400) < 0.3, 0.0, rng.lognormal(size=400))  # 0 in 30 % of the rows
    X = np.c_[rng.normal(size=400), wage]
    with pytest.warns(PointMassWarning, match=r"column 1 is 0 in 3\d% of the rows.*MixedDensity"):
        MAFDensity(**TINY).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PointMassWarning)
        MAFDensity(**TINY).fit(X[wage > 0])  # no mass
        MAFDensity(**TINY).fit(np.c_[X[:, :1], np.round(wage, 1)])  # on a grid of 0.1: dequantised
        MAFDensity(**TINY, warm_start=True).fit(X[wage > 0]).fit(X)  # a continued fit checked its first data


def test_wide_classifier_start_uses_the_pooled_covariance_in_the_row_space():
    from skflow.estimators._class_gaussians import _BETAS, _select_shrinkage, _shrink, _class_moments
    from skflow.estimators._gaussian import gaussian_log_pdfs
    from skflow.estimators._class_gaussians import _label_log_likelihood

    rng = np.random.RandomState(0)
    n, d, k = 60, 300, 3
    x = rng.normal(size=(n, d)) + np.repeat(rng.normal(size=(k, d)), n // k, axis=0)
    labels = np.repeat(np.arange(k), n // k)
    order = rng.permutation(n)
    x, labels = torch.as_tensor(x[order]), torch.as_tensor(labels[order])
    alpha, beta = _select_shrinkage(x, labels, k)
    # The dense computation of the same losses picks the same beta.
    fold = np.arange(n) % 5
    losses = np.zeros(len(_BETAS))
    for f in range(5):
        fit = torch.as_tensor(np.flatnonzero(fold != f))
        means, covs, counts = _class_moments(x, labels, fit, k)
        prior = np.log(counts.numpy() / counts.sum().item())
        for i, b in enumerate(_BETAS):
            joint = gaussian_log_pdfs(x.numpy()[fold == f], means.numpy(), _shrink(covs, counts, 1.0, b).numpy()[None])
            losses[i] -= _label_log_likelihood(joint[:, 0] + prior, labels.numpy()[fold == f]).sum()
    assert alpha == 1.0 and beta == _BETAS[int(losses.argmin())]



@pytest.mark.parametrize("Estimator", [MAFDensity, MAFClassifier, MAFRegressor])
def test_a_warm_start_refuses_rows_beyond_its_scales(Estimator):
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(200, 2)), np.arange(200) % 2
    est = Estimator(**TINY, warm_start=True).fit(X, y if Estimator is not MAFDensity else None)
    far = X * 1e20
    with pytest.raises(ValueError, match="fit afresh"):
        est.fit(far, y if Estimator is not MAFDensity else None)
