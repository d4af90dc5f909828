"""Where file-backed datasets are looked for, and what a missing dataset says."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import pytest

from tests.data.helpers import write_fake_split, write_fake_subset
from weightinfo.data import DatasetNotFoundError, load_dataset, locate, search_roots


def test_search_roots_order(isolated, monkeypatch, tmp_path):
    monkeypatch.setenv(locate.ENV_VAR, os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    labels = [(label, path) for label, path in search_roots(tmp_path / "r")]
    assert labels == [
        ("root argument", tmp_path / "r"),
        ("$WEIGHTINFO_DATA", tmp_path / "a"),
        ("$WEIGHTINFO_DATA", tmp_path / "b"),
        ("user cache", isolated.cache),
        ("system", isolated.system),
    ]


def test_user_cache_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert locate.user_cache_dir() == tmp_path / "weightinfo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert locate.user_cache_dir() == tmp_path / "home" / ".cache" / "weightinfo"


def test_root_beats_env_beats_cache_beats_system(isolated, monkeypatch):
    """Each root holds a fake Fashion-MNIST of a different size; the first one wins."""
    write_fake_split(isolated.root / "fashion-mnist", n_train=11)
    write_fake_split(isolated.env / "fashion-mnist", n_train=12)
    write_fake_split(isolated.cache / "fashion-mnist", n_train=13)
    write_fake_split(isolated.system / "fashion-mnist", n_train=14)
    monkeypatch.setenv(locate.ENV_VAR, str(isolated.env))

    def size(**kw):
        ds = load_dataset("fashion-mnist", **kw)
        assert ds.info["variant"] == "full"
        return len(ds)

    assert size(root=isolated.root) == 11
    assert size() == 12
    monkeypatch.delenv(locate.ENV_VAR)
    assert size() == 13
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated.root / "elsewhere"))
    assert size() == 14


def test_explicit_root_falls_back_when_it_lacks_the_files(isolated, monkeypatch):
    write_fake_split(isolated.env / "fashion-mnist", n_train=12)
    monkeypatch.setenv(locate.ENV_VAR, str(isolated.env))
    isolated.root.mkdir()
    assert len(load_dataset("fashion-mnist", root=isolated.root)) == 12


def test_layouts_torchvision_root_itself_and_uncompressed(isolated):
    folder = write_fake_split(isolated.root / "FashionMNIST" / "raw", n_train=15, gz=False)
    ds = load_dataset("fashion-mnist", root=isolated.root)
    assert len(ds) == 15
    assert Path(ds.info["source"]) == folder
    # root may also *be* the dataset folder
    assert len(load_dataset("fashion-mnist", root=folder)) == 15


def test_loaded_images_are_scaled_and_shaped(isolated):
    write_fake_split(isolated.root / "fashion-mnist", n_train=20, n_test=10, side=5)
    ds = load_dataset("fashion-mnist", root=isolated.root, seed=3)
    assert ds.x_train.shape == (20, 1, 5, 5) and ds.x_test.shape == (10, 1, 5, 5)
    assert ds.x_train.dtype.is_floating_point and 0 <= ds.x_train.min() <= ds.x_train.max() <= 1
    assert ds.input_shape == (1, 5, 5) and ds.n_classes == 10
    assert ds.info["seed"] == 3


def test_missing_dataset_message_lists_every_place(isolated, monkeypatch):
    monkeypatch.setenv(locate.ENV_VAR, str(isolated.env))
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion-mnist", root=isolated.root)
    assert isinstance(info.value, DatasetNotFoundError)
    message = str(info.value)
    for place in (isolated.root, isolated.env, isolated.cache, isolated.system):
        assert str(place / "fashion-mnist") in message
    assert str(isolated.system / "FashionMNIST" / "raw") in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "WEIGHTINFO_DATA" in message and "download=True" in message
    # order of the search is the order of the listing
    positions = [message.index(str(p)) for p in (isolated.root, isolated.env, isolated.cache)]
    assert positions == sorted(positions)


def test_mnist_prefers_full_set_anywhere_over_subset(isolated, monkeypatch):
    write_fake_subset(isolated.root / "mnist-10k")
    assert load_dataset("mnist", root=isolated.root).info["variant"] == "10k"
    write_fake_split(isolated.cache / "MNIST" / "raw", n_train=30)
    full = load_dataset("mnist", root=isolated.root)
    assert full.info["variant"] == "full" and len(full) == 30
    assert load_dataset("mnist-10k", root=isolated.root).info["variant"] == "10k"


def test_mnist_missing_message_mentions_both_variants(isolated):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert str(isolated.cache / "mnist") in message
    assert str(isolated.cache / "mnist-10k") in message
    assert "images-idx3-ubyte" in message


def test_download_failure_is_a_clear_not_found_error(isolated, monkeypatch):
    """No network is used: urlopen is replaced by one that fails like an offline machine."""

    def offline(url, timeout=None):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(locate.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetNotFoundError, match="Download failed") as info:
        load_dataset("fashion-mnist", download=True)
    assert "Name or service not known" in str(info.value)
    assert not list(isolated.cache.rglob("*.part"))


def test_mnist_download_failure_falls_back_to_subset(isolated, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(locate.urllib.request, "urlopen", offline)
    write_fake_subset(isolated.cache / "mnist-10k")
    with pytest.warns(UserWarning, match="10k subset"):
        ds = load_dataset("mnist", download=True)
    assert ds.info["variant"] == "10k"


def test_download_files_from_file_urls(isolated, tmp_path):
    """The downloader itself, fed file:// URLs (no network): copies, then skips existing."""
    src = write_fake_split(tmp_path / "src", n_train=9)
    urls = {p.name: p.as_uri() for p in src.iterdir()}
    dest = locate.download_files(urls, isolated.cache / "fashion-mnist")
    assert sorted(p.name for p in dest.iterdir()) == sorted(urls)
    assert len(load_dataset("fashion-mnist")) == 9
    (src / next(iter(urls))).unlink()  # already downloaded files are not fetched again
    locate.download_files(urls, dest)
