"""Task callables, one module per domain. Each is thin glue: read lake tables, call pure library
functions, write lake tables, return what it wrote (table versions, counts, metrics)."""
