"""IDX reader/writer: round trips and clear errors on corrupt files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from weightinfo.data.idx import read_idx, write_idx


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((5, 3, 2)) * 100).astype(dtype)
    path = write_idx(tmp_path / "a.idx", array, compress=compress)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    assert back.shape == (5, 3, 2)
    np.testing.assert_array_equal(back, array)


def test_gzip_detected_from_content_and_suffix(tmp_path):
    labels = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / "l.gz", labels)
    assert (tmp_path / "l.gz").read_bytes()[:2] == b"\x1f\x8b"
    write_idx(tmp_path / "l-no-suffix", labels, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "l.gz"), labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "l-no-suffix"), labels)


def test_mnist_style_header_bytes(tmp_path):
    """Images are 0x00000803 + big-endian sizes, exactly as in the original files."""
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    raw = write_idx(tmp_path / "img", images).read_bytes()
    assert raw[:4] == bytes.fromhex("00000803")
    assert raw[4:16] == bytes.fromhex("000000020000001c0000001c")
    assert len(raw) == 16 + 2 * 28 * 28


def test_writer_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="IDX"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x01\x02\x08\x01" + bytes(4) + bytes(0), "magic number"),
        (_header(0x07, (3,)) + bytes(3), "unknown IDX element type"),
        (_header(0x08, (4, 2)) + bytes(7), "holds 7 bytes"),
        (_header(0x08, (4,)) + bytes(5), "holds 5 bytes"),
        (bytes([0, 0, 8, 3, 0, 0]), "truncated IDX header"),
        (bytes([0, 0, 8, 0]), "0 dimensions"),
        (b"\x00\x00", "not an IDX file"),
    ],
)
def test_corrupt_files_raise_value_error(tmp_path, payload, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    gz = tmp_path / "bad-idx1-ubyte.gz"
    gz.write_bytes(gzip.compress(payload))
    with pytest.raises(ValueError, match=message):
        read_idx(gz)


def test_truncated_gzip_raises_value_error(tmp_path):
    good = gzip.compress(_header(0x08, (1000,)) + bytes(1000))
    path = tmp_path / "cut.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt gzip"):
        read_idx(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")
