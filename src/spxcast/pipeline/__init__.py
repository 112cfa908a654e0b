"""DAGs declared as data (:mod:`spxcast.pipeline.spec`) and the local runner that executes them."""
