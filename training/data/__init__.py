"""Bags -> aligned episodes -> decoded on-disk cache -> random training windows."""
