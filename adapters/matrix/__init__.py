"""The Matrix adapter (matrix-nio, with end-to-end encryption)."""

from adapters.matrix.adapter import PLATFORM, MatrixAdapter, MatrixError

__all__ = ["PLATFORM", "MatrixAdapter", "MatrixError"]
