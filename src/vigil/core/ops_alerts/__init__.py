"""Alerts that Alertmanager delivers to Vigil (its webhook receiver): stored by fingerprint,
listed by the API (``/api/v1/alerts``) and the ``/ops/alerts`` page, pruned by housekeeping.

Core machinery, not a module: the alerts are about the platform (the Prometheus rules of
``deploy/helm/vigil/files/alerts.yml``), whatever module they concern."""
