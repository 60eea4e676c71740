"""Batch catalog uploads: manifests, the per-run plan, and the catalog DAG's steps."""
