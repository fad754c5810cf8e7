"""Vigil: collect time series and turn them into signals, alerts, forecasts and dashboards."""

__version__ = "0.1.0"
