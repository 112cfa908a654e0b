"""The Streamlit dashboard: a client of the spxcast API only (``spxcast dashboard``).

``client`` talks HTTP to the API, ``prep`` turns its wire documents into frames and figures' inputs (pure,
testable without Streamlit), ``app`` is the Streamlit script (pages and the states a person understands).
"""
