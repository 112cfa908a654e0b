"""Ingestion: a source's records, cleaned and checked, written to bronze (one module per data family)."""
