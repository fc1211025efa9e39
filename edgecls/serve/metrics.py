"""Prometheus metrics of a service (one registry per app)."""

from __future__ import annotations

from typing import Any

__all__ = ["Metrics"]

_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Metrics:
    """Requests by endpoint and status, latency histograms (total, preprocess, inference), requests in
    flight, reloads by model and result, and the models served (name, sha256)."""

    def __init__(self, models: Any) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("edgecls_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=r)
        self.latency = Histogram("edgecls_request_seconds", "Request latency by endpoint", ["endpoint"],
                                 buckets=_BUCKETS, registry=r)
        self.preprocess = Histogram("edgecls_preprocess_seconds", "Decode and preprocessing per image",
                                    buckets=_BUCKETS, registry=r)
        self.inference = Histogram("edgecls_inference_seconds", "Inference per image", buckets=_BUCKETS, registry=r)
        self.in_flight = Gauge("edgecls_in_flight_requests", "Requests being handled", registry=r)
        self.reloads = Counter("edgecls_model_reloads", "Model reloads by model and result", ["model", "result"],
                               registry=r)
        self.info = Info("edgecls_model", "A model served", ["name"], registry=r)
        self.describe(models)

    def observe(self, timings: Any) -> None:
        """Each classification's preprocessing and inference time (a :class:`~edgecls.runtime.Timings` each)."""
        for t in timings:
            self.preprocess.observe(t.preprocess_ms / 1000)
            self.inference.observe(t.inference_ms / 1000)

    def describe(self, models: Any) -> None:
        for name, served in models.models.items():
            self.info.labels(name).info({"sha256": served.pool.sha256, "path": str(served.path)})

    def watch_captures(self, captures: dict[str, Any]) -> None:
        """Export each model's hard-example counts (read when scraped) as ``edgecls_captures_total{model,
        outcome}``: hard, written, skipped, dropped, failed, removed."""
        from prometheus_client.core import CounterMetricFamily

        class Captures:
            def collect(self):
                family = CounterMetricFamily("edgecls_captures", "Hard examples by model and outcome",
                                             labels=["model", "outcome"])
                for name, writer in captures.items():
                    stats = writer.stats
                    for outcome in ("hard", "written", "skipped", "dropped", "failed", "removed"):
                        family.add_metric([name, outcome], getattr(stats, outcome))
                yield family

        self.registry.register(Captures())

    def watch_drift(self, models: Any) -> None:
        """Export each served model's drift, read when scraped from its monitor's last window:
        ``edgecls_drift_psi{model,signal}`` and ``edgecls_drift_state{model,signal}`` (0 ok, 1 warn, 2 alert);
        nothing for a model without a monitor or before its first window."""
        from prometheus_client.core import GaugeMetricFamily

        from edgecls.runtime.monitor import STATES

        class Drift:
            def collect(self):
                psi = GaugeMetricFamily("edgecls_drift_psi", "PSI of each drift signal's last window against the "
                                        "model's reference profile", labels=["model", "signal"])
                state = GaugeMetricFamily("edgecls_drift_state", "Each drift signal's state: 0 ok, 1 warn, 2 alert",
                                          labels=["model", "signal"])
                for name, served in models.models.items():
                    monitor = served.pool.monitor
                    report = monitor.last if monitor is not None else None
                    for signal in report.signals if report is not None else ():
                        psi.add_metric([name, signal.signal], signal.psi)
                        state.add_metric([name, signal.signal], STATES.index(signal.state))
                yield psi
                yield state

        self.registry.register(Drift())

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
