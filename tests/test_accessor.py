"""The ``.s2n`` accessor: every method is a one-line delegation, so it equals the free function."""

from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np
import pytest
import xarray as xr

import sen2naip_xr as s2n
from sen2naip_xr.accessor import S2NAccessor

#: (accessor method, positional args, keyword args): every operator, with default and non-default options
CASES = [
    ("histogram_match", ("REF",), {}),
    ("blank_mask", (), {}),
    ("blank_mask", (5,), {}),
    ("is_blank", (), {}),
    ("is_blank", (5,), {"max_fraction": 0.1}),
    ("blur_downsample", (), {}),
    ("blur_downsample", ((1.0, 1.5, 2.0, 2.5),), {"mode": "raw"}),
    ("add_noise", (), {}),
    ("add_noise", ("gaussian",), {"seed": 3, "sigma": 0.02, "stream": "a"}),
    ("harmonize", (), {}),
    ("harmonize", ("gamma_mvn",), {"percentile": 10, "pooled": True}),
    ("harmonize", ("unet",), {"device": "cpu", "batch_size": 2}),
    ("harmonize", ("vae",), {"sample": True, "seed": 5}),
    ("degrade", (["identity", "gamma_lognormal"],), {"seed": 2, "percentiles": (25, 75)}),
    ("degrade", (["vae"],), {"noise": "gaussian", "noise_sigma": 0.03}),
]


@pytest.fixture(scope="module")
def image() -> xr.DataArray:
    return xr.concat([s2n.example_image(size=32, seed=s) for s in range(2)], dim="roi")


@pytest.fixture(scope="module")
def reference() -> xr.DataArray:
    return s2n.example_image(size=16, seed=9) ** 0.8


def _args(args, reference):
    return tuple(reference if a == "REF" else a for a in args)


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("method, args, kwargs", CASES, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(CASES)])
def test_accessor_equals_the_free_function(image, reference, method, args, kwargs, chunked, no_compute):
    if "unet" in args:
        pytest.importorskip("torch")  # the U-Net
    data = image.chunk({"roi": 1, "y": 16}) if chunked else image
    args = _args(args, reference)
    with no_compute():  # the accessor computes nothing either
        got = getattr(data.s2n, method)(*args, **kwargs)
        expected = getattr(s2n, method)(data, *args, **kwargs)
    if chunked:  # same graph: the same keys
        for g, e in zip(_arrays(got), _arrays(expected), strict=True):
            assert g.data.name == e.data.name
    xr.testing.assert_identical(got.compute(), expected.compute())


def _arrays(obj):
    if isinstance(obj, xr.DataTree):
        return [obj[f"{n}/{n}"] for n in obj.children]
    return list(obj.data_vars.values()) if isinstance(obj, xr.Dataset) else [obj]


def test_accessor_covers_every_image_operator():
    methods = {n for n, _ in inspect.getmembers(S2NAccessor, inspect.isfunction) if not n.startswith("_")}
    operators = {"histogram_match", "blank_mask", "is_blank", "blur_downsample", "add_noise", "harmonize", "degrade"}
    assert methods == operators
    assert operators <= set(s2n.__all__)


OPERATORS = ["histogram_match", "blank_mask", "is_blank", "blur_downsample", "add_noise", "harmonize", "degrade"]


@pytest.mark.parametrize("name", OPERATORS)
def test_each_method_has_the_free_functions_signature_and_doc(name, image):
    """help(da.s2n.<name>) shows the free function's parameters (minus the image) and its docstring."""
    free = getattr(s2n, name)
    params = list(inspect.signature(free).parameters.values())[1:]
    bound = getattr(image.s2n, name)
    assert list(inspect.signature(bound).parameters.values()) == params
    assert inspect.signature(bound).return_annotation == inspect.signature(free).return_annotation
    assert inspect.cleandoc(free.__doc__) in bound.__doc__
    assert all(p.name in pydoc_text(bound) for p in params)


def pydoc_text(obj) -> str:
    import pydoc

    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


def test_delegate_forwards_every_argument_in_one_line():
    """The generated body is one call of the free function with the DataArray first."""
    from sen2naip_xr.accessor import delegate

    def free(image, a, b=2, *, c=3):
        """Doc."""
        return image, a, b, c

    class Fake:
        _obj = "DA"
        f = delegate(free)

    assert Fake().f(1, c=4) == ("DA", 1, 2, 4)
    assert str(inspect.signature(Fake().f)) == "(a, b=2, *, c=3)"
    body = ast.parse(textwrap.dedent(inspect.getsource(delegate))).body[0]
    method = next(n for n in ast.walk(body) if isinstance(n, ast.FunctionDef) and n.name == "method")
    assert len(method.body) == 1 and isinstance(method.body[0], ast.Return)
    call = method.body[0].value
    assert isinstance(call.args[0], ast.Attribute) and call.args[0].attr == "_obj"


def test_accessor_errors_are_the_free_functions_errors(image):
    with pytest.raises(s2n.InputError, match="window=4"):
        image.s2n.blank_mask(4)
    with pytest.raises(s2n.InputError, match="dtype uint8"):
        (image * 255).astype("uint8").s2n.degrade()


def test_accessor_init_does_nothing(image, no_compute):
    data = image.chunk({"roi": 1})
    with no_compute():
        acc = data.s2n
    assert acc._obj is data
    assert isinstance(acc, S2NAccessor)
    np.testing.assert_array_equal(data.values, image.values)  # untouched
