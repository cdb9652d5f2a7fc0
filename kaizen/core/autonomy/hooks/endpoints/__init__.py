"""HTTP endpoints of the hooks system."""

from __future__ import annotations

from .metrics_endpoint import MetricsEndpoint

__all__ = ["MetricsEndpoint"]
