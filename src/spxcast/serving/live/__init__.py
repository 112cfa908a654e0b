"""The live loop: new candles -> bronze -> online features -> predictions by the serving slots -> log ->
market stream, with realised returns attached when the horizon passes (docs/live.md)."""
