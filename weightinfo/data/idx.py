"""Reader and writer for the IDX format of the MNIST family of datasets.

An IDX file is a header followed by a C-ordered array in big-endian byte order:

* 2 zero bytes,
* 1 byte giving the element type (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
  ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64),
* 1 byte giving the number of dimensions ``ndim``,
* ``ndim`` big-endian unsigned 32-bit sizes,
* the data.

MNIST images are ``0x00000803`` (uint8, 3 dimensions: N, rows, cols) and labels
``0x00000801`` (uint8, 1 dimension). Files may be gzip-compressed; compression is
detected from the content (the gzip magic bytes), not from the file name.

Every malformed file (bad magic number, unknown type, size mismatch, truncated gzip
stream) raises :class:`ValueError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]

#: IDX type code -> numpy dtype (big-endian where it matters).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt gzip stream ({err})") from err


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed) into a numpy array.

    The array keeps the file's element type, converted to native byte order, and the
    shape stored in the header (e.g. ``(60000, 28, 28)`` uint8 for MNIST images).

    Raises
    ------
    FileNotFoundError
        if ``path`` does not exist.
    ValueError
        if the file is not a valid IDX file (magic number, element type, or a data
        length that disagrees with the sizes in the header).
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file (magic number {data[:4].hex()} must start with 0000)"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} < {header_len} bytes)")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        raise ValueError(
            f"{path}: IDX header declares shape {shape} of {dtype.name} "
            f"({expected} bytes of data) but the file holds {actual} bytes"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip-compress when ``compress`` (default: name ends .gz).

    Supported dtypes are those of :data:`IDX_DTYPES` (uint8, int8, int16, int32, float32,
    float64). Returns the path written.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    code = next(
        (
            c
            for c, dt in IDX_DTYPES.items()
            if dt.kind == array.dtype.kind and dt.itemsize == array.dtype.itemsize
        ),
        None,
    )
    if code is None:
        raise ValueError(f"dtype {array.dtype} cannot be stored in an IDX file")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        payload = gzip.compress(payload, compresslevel=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path
