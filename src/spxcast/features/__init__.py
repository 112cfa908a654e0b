"""Point-in-time features: the catalog (:mod:`spxcast.features.catalog`), one module per family, labels."""
