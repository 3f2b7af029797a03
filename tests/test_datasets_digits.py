"""Embedded digits domains: interface, disjoint domains, transforms against scipy references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from sklearn.datasets import load_digits

from ldr_plugin.datasets.digits import CorruptedDigits, RotatedDigits, load_digit_images


@pytest.fixture(scope="module")
def rotated():
    return RotatedDigits(None, [0], {})


@pytest.fixture(scope="module")
def corrupted():
    return CorruptedDigits(None, [0], {})


@pytest.fixture(scope="module")
def clean_images():
    return load_digit_images()


@pytest.mark.parametrize("cls", [RotatedDigits, CorruptedDigits])
def test_domainbed_interface(cls):
    ds = cls("/nonexistent", [0, 1], {"batch_size": 8})
    assert len(ds) == len(cls.ENVIRONMENTS) == len(ds.datasets)
    assert ds.input_shape == (1, 28, 28) and isinstance(ds.input_shape, tuple)
    assert ds.num_classes == 10
    assert isinstance(cls.N_STEPS, int) and isinstance(cls.CHECKPOINT_FREQ, int) and cls.N_WORKERS == 0
    for env in ds:
        x, y = env[0]
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert float(env.tensors[0].min()) >= 0.0 and float(env.tensors[0].max()) <= 1.0


@pytest.mark.parametrize("cls", [RotatedDigits, CorruptedDigits])
def test_domains_partition_sklearn_digits(cls):
    """Domains hold disjoint images that together are exactly sklearn's 1797 digits."""
    ds = cls(None, [], {})
    target = load_digits().target
    labels = np.concatenate([env.tensors[1].numpy() for env in ds])
    assert labels.size == target.size == 1797
    assert np.array_equal(np.bincount(labels, minlength=10), np.bincount(target, minlength=10))
    sizes = [len(env) for env in ds]
    assert max(sizes) - min(sizes) <= 1


def test_clean_images_are_sklearn_digits_upsampled(clean_images):
    """Shuffled with RandomState(0), scaled to [0, 1], bilinear 8->20 (scipy zoom reference), padded to 28."""
    images, labels = clean_images
    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.target))
    zoomed = [ndi.zoom(a / 16.0, 2.5, order=1, grid_mode=True, mode="nearest") for a in digits.images[order]]
    ref = np.pad(np.stack(zoomed), ((0, 0), (4, 4), (4, 4)))
    assert np.abs(ref - images[:, 0].numpy()).max() < 1e-5
    assert np.array_equal(labels.numpy(), digits.target[order])


def test_rotation_matches_scipy(rotated, clean_images):
    images = clean_images[0]
    n_envs = len(RotatedDigits.ENVIRONMENTS)
    for i, angle in enumerate(RotatedDigits.ENVIRONMENTS):
        src = images[i::n_envs, 0].numpy()
        ref = np.stack([ndi.rotate(a, float(angle), reshape=False, order=1) for a in src])
        got = rotated[i].tensors[0][:, 0].numpy()
        assert np.abs(ref - got).max() < 1e-4, angle


def test_corruptions_match_references(corrupted, clean_images):
    images = clean_images[0]
    n = len(CorruptedDigits.ENVIRONMENTS)
    clean = {name: images[i::n, 0].numpy() for i, name in enumerate(CorruptedDigits.ENVIRONMENTS)}
    got = {name: corrupted[i].tensors[0][:, 0].numpy() for i, name in enumerate(CorruptedDigits.ENVIRONMENTS)}
    assert np.array_equal(got["clean"], clean["clean"])
    blur = np.stack([ndi.gaussian_filter(a, 1.5, mode="mirror", truncate=3.0) for a in clean["blur"]])
    assert np.abs(blur - got["blur"]).max() < 1e-5
    assert np.allclose(got["fog"], 0.35 * clean["fog"] + 0.45, atol=1e-6)
    # noise: on background pixels the value is max(0, N(0, 0.35^2)) -> half zeros, E[x | x > 0] = 0.35*sqrt(2/pi)
    bg = got["noise"][clean["noise"] == 0]
    assert abs((bg == 0).mean() - 0.5) < 0.02
    assert abs(bg[bg > 0].mean() - 0.35 * np.sqrt(2 / np.pi)) < 0.01
    # occlusion: exactly one 10x10 square was blacked out inside the digit box, the rest unchanged
    changed = got["occlusion"] != clean["occlusion"]
    assert np.all(got["occlusion"][changed] == 0)
    for img in got["occlusion"][:20]:
        zero = img[4:24, 4:24] == 0
        windows = np.lib.stride_tricks.sliding_window_view(zero, (10, 10)).all(axis=(2, 3))
        assert windows.any()


@pytest.mark.parametrize("cls", [RotatedDigits, CorruptedDigits])
def test_deterministic_and_independent_of_global_rng(cls):
    torch.manual_seed(1)
    np.random.seed(1)
    a = cls(None, [0], {})
    torch.manual_seed(2)
    np.random.seed(2)
    b = cls(None, [1], {})
    for ea, eb in zip(a, b):
        assert torch.equal(ea.tensors[0], eb.tensors[0]) and torch.equal(ea.tensors[1], eb.tensors[1])


def test_declared_batch_size_range_fits_smallest_in_split():
    """Random batch sizes must fit DomainBed's drop_last loader on an 80% in-split (else it hangs)."""
    fn = RotatedDigits.HPARAMS["batch_size"][1]
    draws = [fn(np.random.RandomState(seed)) for seed in range(500)]
    smallest = min(len(env) for env in RotatedDigits(None, [], {}))
    assert all(isinstance(d, int) for d in draws)
    assert 8 <= min(draws) and max(draws) <= smallest - int(smallest * 0.2)
