"""The estimators' docstrings are literal; what they share must say the same."""

import ast
import inspect
import re

import pytest

from skflow import MAFClassifier, MAFDensity, MAFOutlierDetector, MAFRegressor

ESTIMATORS = [MAFDensity, MAFOutlierDetector, MAFClassifier, MAFRegressor]
#: Parameters whose meaning differs by estimator (what the start or the base is for it).
OWN_TEXT = {"init", "base", "calibrate", "priors", "contamination", "n_predict_samples", "gaussian_weight",
            "layer_type"}


def _sections(cls, heading):
    doc = inspect.getdoc(cls)
    body = doc.split(f"{heading}\n{'-' * len(heading)}\n", 1)[1]
    body = re.split(r"\n\n[A-Z][a-z ]+\n-{3,}\n", body)[0]
    entries, name = {}, None
    for line in body.splitlines():
        match = re.match(r"^(\w+) : ", line)
        if match:
            name = match.group(1)
            entries[name] = [line]
        elif name is not None:
            entries[name].append(line)
    return {k: "\n".join(v).strip() for k, v in entries.items()}


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_every_constructor_parameter_is_documented(cls):
    documented = _sections(cls, "Parameters")
    missing = set(inspect.signature(cls).parameters) - set(documented)
    assert not missing, f"{cls.__name__} does not document {sorted(missing)}"


def test_shared_parameters_read_the_same_in_every_estimator():
    texts = {cls.__name__: _sections(cls, "Parameters") for cls in ESTIMATORS}
    shared = set.intersection(*(set(t) for t in texts.values())) - OWN_TEXT
    assert len(shared) > 20
    for name in sorted(shared):
        versions = {t[name] for t in texts.values()}
        assert len(versions) == 1, f"{name} is described differently: {versions}"


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_defaults_in_the_docstring_are_the_signature_defaults(cls):
    documented = _sections(cls, "Parameters")
    for name, parameter in inspect.signature(cls).parameters.items():
        match = re.search(r"default=(.+)$", documented[name].splitlines()[0])
        assert match, f"{cls.__name__}.{name}: no default in the docstring"
        assert ast.literal_eval(match.group(1)) == parameter.default, (cls.__name__, name)
