"""What every argument must be: each check names the argument and what is
wrong with it, and raises ValueError (TypeError for a wrong kind of object),
so a bad input never reaches the GPU."""

import numbers

import numpy as np

F32_MAX = float(np.finfo(np.float32).max)


def images(x, name, inputs):
    """Images as the book passes them (float64, float32 or uint8; (N, inputs)
    or (N, C, H, W) with C·H·W = inputs) as contiguous float64 (N, inputs);
    uint8 pixels k are read as k / 255, as gpu-net reads MNIST."""
    a = np.asarray(x)
    if a.dtype == np.uint8:
        a = a.astype(np.float64) / 255.0
    elif a.dtype.kind == "f":
        a = a.astype(np.float64, copy=False)
    else:
        raise ValueError(f"{name} has dtype {a.dtype}; pass float64, float32 or uint8 images")
    if a.ndim == 4 and int(np.prod(a.shape[1:])) == inputs:
        a = a.reshape(a.shape[0], inputs)
    if a.ndim != 2 or a.shape[1] != inputs or a.shape[0] == 0:
        raise ValueError(
            f"{name} has shape {a.shape}; the network takes (N, {inputs}) or (N, C, H, W) "
            f"with C·H·W = {inputs}, N at least 1"
        )
    if not np.isfinite(a).all():
        row = int(np.argwhere(~np.isfinite(a))[0][0])
        raise ValueError(f"{name} holds NaN or infinity (row {row})")
    if np.abs(a).max() > F32_MAX:
        row = int(np.argwhere(np.abs(a) > F32_MAX)[0][0])
        raise ValueError(f"{name} holds a value beyond float32's range (row {row}); the GPU computes in float32")
    return np.ascontiguousarray(a)


def labels(t, name, rows, classes):
    """Labels as class indices or one-hot rows, as contiguous int64 indices."""
    a = np.asarray(t)
    if a.ndim == 2:
        if a.shape != (rows, classes):
            raise ValueError(f"{name} has shape {a.shape}; one-hot labels are ({rows}, {classes})")
        if not (np.isin(a, (0, 1)).all() and (a.sum(axis=1) == 1).all()):
            raise ValueError(f"{name}: each one-hot row must hold one 1 and zeros elsewhere")
        return np.ascontiguousarray(a.argmax(axis=1).astype(np.int64))
    if a.ndim != 1 or a.shape[0] != rows:
        raise ValueError(f"{name} has shape {a.shape}; pass {rows} labels, or ({rows}, {classes}) one-hot rows")
    if a.dtype.kind not in "iu":
        if a.dtype.kind != "f" or not (np.isfinite(a).all() and (a == np.round(a)).all()):
            raise ValueError(f"{name} has dtype {a.dtype} with values that are not class numbers")
    bad = np.flatnonzero((a < 0) | (a >= classes))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is {a[bad[0]]}, outside 0..{classes - 1}")
    return np.ascontiguousarray(a.astype(np.int64))


def pixels(x, name, inputs):
    """Images as uint8 (N, inputs) for the Trainer, which keeps them on the
    GPU as bytes: uint8 images, or floats that are k / 255 (as load_mnist's)."""
    a = np.asarray(x)
    if a.ndim == 4 and int(np.prod(a.shape[1:])) == inputs:
        a = a.reshape(a.shape[0], inputs)
    if a.ndim != 2 or a.shape[1] != inputs or a.shape[0] == 0:
        raise ValueError(f"{name} has shape {a.shape}; the network takes (N, {inputs})")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind != "f":
        raise ValueError(f"{name} has dtype {a.dtype}; pass float64, float32 or uint8 images")
    k = np.rint(a.astype(np.float64) * 255.0)
    if not (np.isfinite(a).all() and (np.abs(a * 255.0 - k) <= 1e-3).all() and (k >= 0).all() and (k <= 255).all()):
        raise ValueError(
            f"{name}: the Trainer keeps images on the GPU as bytes, so it takes uint8 images "
            "or values k/255 (as load_mnist gives); train other inputs step by step with "
            "network.gradient() and an optimizer"
        )
    return np.ascontiguousarray(k.astype(np.uint8))


def count(v, name, least=1, most=None):
    """A whole number at least `least` (and at most `most`)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, not {v!r}")
    if v < least or (most is not None and v > most):
        limit = f"from {least} to {most}" if most is not None else f"at least {least}"
        raise ValueError(f"{name} is {v}; it must be {limit}")
    return int(v)


def number(v, name, least=None, positive=False):
    """A finite real number (positive, or at least `least`)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, not {v!r}")
    if positive and v <= 0:
        raise ValueError(f"{name} is {v}; it must be above 0")
    if least is not None and v < least:
        raise ValueError(f"{name} is {v}; it must be at least {least}")
    return float(v)
