"""Ingestion orchestration: sources -> validation -> bronze tables, chunk by chunk."""
