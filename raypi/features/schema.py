"""The feature store's Parquet contract: the one place its columns, dtypes and shapes are named.

Image rows are ``(image_id, view, tokens)``; text rows are ``(image_id, tokens, length)``.
``tokens`` is a fixed-size binary column holding one row's ``[T, D]`` tensor, flattened
row-major, in the store's dtype. Fixed-size binary (rather than a list column) keeps one value
per row in Parquet, so reading is a plain copy and a whole column turns into a numpy view of
shape ``[rows, T, D]`` without touching rows one by one. bf16 has no numpy dtype; it is stored
as its raw 16 bits and viewed back as ``torch.bfloat16``. Each shard's schema metadata repeats
the token shape and dtype so a shard can be checked against its manifest on its own.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

IMAGE_ID = "image_id"
VIEW = "view"
TOKENS = "tokens"
LENGTH = "length"

IMAGE_KEYS = (IMAGE_ID, VIEW)
TEXT_KEYS = (IMAGE_ID,)

_META_SHAPE = b"raypi.token_shape"
_META_DTYPE = b"raypi.dtype"


@dataclass(frozen=True)
class StorageDtype:
    """How one token dtype is stored and read back."""

    name: str
    """The store's name for it: ``fp16``, ``bf16`` or ``fp32``."""
    numpy: type
    """The numpy dtype holding its bytes (raw bits for bf16)."""
    torch: torch.dtype
    """The torch dtype the reader returns."""

    @property
    def itemsize(self) -> int:
        """Bytes per value."""
        return np.dtype(self.numpy).itemsize


DTYPES = {
    "fp16": StorageDtype("fp16", np.float16, torch.float16),
    "bf16": StorageDtype("bf16", np.int16, torch.bfloat16),
    "fp32": StorageDtype("fp32", np.float32, torch.float32),
}


def storage_dtype(name: str) -> StorageDtype:
    """Return the storage dtype called ``name``, or raise naming the known ones."""
    if name not in DTYPES:
        raise ValueError(f"unknown feature dtype {name!r}; expected one of {sorted(DTYPES)}")
    return DTYPES[name]


def row_bytes(token_shape: tuple[int, int], dtype: str) -> int:
    """Return the size in bytes of one row's tokens."""
    return int(np.prod(token_shape)) * storage_dtype(dtype).itemsize


def _tokens_type(token_shape: tuple[int, int], dtype: str) -> pa.DataType:
    return pa.binary(row_bytes(token_shape, dtype))


def image_schema(token_shape: tuple[int, int], dtype: str) -> pa.Schema:
    """Return the Arrow schema of image feature shards."""
    fields = [
        pa.field(IMAGE_ID, pa.string(), nullable=False),
        pa.field(VIEW, pa.int16(), nullable=False),
        pa.field(TOKENS, _tokens_type(token_shape, dtype), nullable=False),
    ]
    return pa.schema(fields, metadata=_metadata(token_shape, dtype))


def text_schema(token_shape: tuple[int, int], dtype: str) -> pa.Schema:
    """Return the Arrow schema of text feature shards (``token_shape`` is ``[L_max, D]``)."""
    fields = [
        pa.field(IMAGE_ID, pa.string(), nullable=False),
        pa.field(TOKENS, _tokens_type(token_shape, dtype), nullable=False),
        pa.field(LENGTH, pa.int32(), nullable=False),
    ]
    return pa.schema(fields, metadata=_metadata(token_shape, dtype))


def _metadata(token_shape: tuple[int, int], dtype: str) -> dict[bytes, bytes]:
    return {_META_SHAPE: ",".join(map(str, token_shape)).encode(), _META_DTYPE: dtype.encode()}


def shard_layout(schema: pa.Schema) -> tuple[tuple[int, ...], str]:
    """Return the ``(token_shape, dtype)`` a shard's schema metadata declares."""
    metadata = schema.metadata or {}
    if _META_SHAPE not in metadata or _META_DTYPE not in metadata:
        raise ValueError("feature shard lacks raypi token shape/dtype metadata")
    shape = tuple(int(size) for size in metadata[_META_SHAPE].decode().split(","))
    return shape, metadata[_META_DTYPE].decode()


def encode_tokens(tokens: torch.Tensor, dtype: str) -> pa.FixedSizeBinaryArray:
    """Turn a ``[B, T, D]`` tensor into a ``tokens`` column in the store's dtype.

    Args:
        tokens: Token features of ``B`` rows (any float dtype, any device).
        dtype: Storage dtype name.

    Returns:
        A fixed-size binary array of ``B`` values sharing the tensor's converted bytes.
    """
    spec = storage_dtype(dtype)
    values = tokens.detach().to("cpu", spec.torch).contiguous()
    array = values.view(torch.int16).numpy() if dtype == "bf16" else values.numpy()
    width = int(np.prod(array.shape[1:])) * spec.itemsize
    buffer = pa.py_buffer(np.ascontiguousarray(array).view(np.uint8).reshape(-1))
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(array), [None, buffer])


def decode_tokens(column: pa.Array, token_shape: tuple[int, int], dtype: str) -> np.ndarray:
    """Return a ``tokens`` column as a numpy view ``[rows, T, D]`` (no copy for one chunk).

    Args:
        column: A fixed-size binary array (or a chunked array of them).
        token_shape: ``(T, D)`` the rows hold.
        dtype: Storage dtype name.

    Returns:
        A read-only array of the storage numpy dtype (raw int16 bits for bf16).
    """
    spec = storage_dtype(dtype)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if column.null_count:
        raise ValueError(f"tokens column has {column.null_count} null rows")
    width = row_bytes(token_shape, dtype)
    if column.type != pa.binary(width):
        raise ValueError(f"tokens column is {column.type}; expected {pa.binary(width)}")
    data = column.buffers()[1]
    flat = np.frombuffer(
        data,
        dtype=spec.numpy,
        count=len(column) * width // spec.itemsize,
        offset=column.offset * width,
    )
    return flat.reshape(len(column), *token_shape)


def as_torch(array: np.ndarray, dtype: str) -> torch.Tensor:
    """Wrap a numpy token array as a torch tensor of the store's dtype (no copy)."""
    with warnings.catch_warnings():
        # Arrow buffers are read-only; the reader only ever copies out of them.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if dtype == "bf16" else tensor


def image_table(
    image_ids: list[str], views: np.ndarray, tokens: torch.Tensor, dtype: str
) -> pa.Table:
    """Build an image feature shard's table.

    Args:
        image_ids: One id per row.
        views: View index per row (0 = evaluation view).
        tokens: ``[B, T, D]`` features.
        dtype: Storage dtype name.

    Returns:
        The table, with the image schema.
    """
    schema = image_schema(tuple(tokens.shape[1:]), dtype)
    columns = [
        pa.array(list(image_ids), pa.string()),
        pa.array(np.asarray(views, dtype=np.int16)),
        encode_tokens(tokens, dtype),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def text_table(
    image_ids: list[str], tokens: torch.Tensor, lengths: np.ndarray, dtype: str
) -> pa.Table:
    """Build a text feature shard's table.

    Args:
        image_ids: One id per row (the image whose report was encoded).
        tokens: ``[B, L_max, D]`` features, zero past each row's length.
        lengths: Real token count per row (at most ``L_max``).
        dtype: Storage dtype name.

    Returns:
        The table, with the text schema.
    """
    schema = text_schema(tuple(tokens.shape[1:]), dtype)
    columns = [
        pa.array(list(image_ids), pa.string()),
        encode_tokens(tokens, dtype),
        pa.array(np.asarray(lengths, dtype=np.int32)),
    ]
    return pa.Table.from_arrays(columns, schema=schema)
