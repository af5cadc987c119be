"""Dask pipelines that orchestrate pnp library calls (no maths lives here)."""
