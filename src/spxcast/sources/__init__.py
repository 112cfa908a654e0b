"""External data sources: each client implements a Protocol and returns raw frames."""
