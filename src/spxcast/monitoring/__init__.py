"""Monitoring: calibrated drift, decay on realised outcomes, freshness, alerts and the retrain loop.

The check modules (drift, performance, freshness, alerts, retrain) are pure; :mod:`.service` does the I/O.
"""
