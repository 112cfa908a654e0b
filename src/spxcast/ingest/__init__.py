"""Ingestion: sources -> validation -> bronze tables, chunk by chunk (one module per data family)."""
