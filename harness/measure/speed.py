"""What `owb run`'s speed measures, for its PerfSummary: the clock its latencies are on (`client`, `engine` or
`batch`), what its throughput is (a closed batch: every request submitted at once, the engine's batch limit in
flight; or the load a served run was put under), and whether prefix caching was on."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from harness.records.base import BackendInfo


class SpeedContext(BaseModel):
    """The additive PerfSummary fields that say what a run's speed figures mean."""

    latency_scope: Literal["client", "engine", "batch"] | None
    throughput_scope: str
    prefix_caching: bool | None


def speed_context(backend: BackendInfo, report: dict[str, Any], timing_scopes: list[str]) -> SpeedContext:
    """The scope of a run's figures from its backend's description and report: a backend that reports the load it
    served (`served` in its report) is on the client's clock under that load; an in-process engine's figures are on
    its own clock (or its batch's) over a closed batch. Prefix caching as the backend recorded it (a server's from
    its /metrics, an engine's from its arguments; None where not set, i.e. the engine's default)."""
    served = report.get("served")
    if isinstance(served, dict):
        load = served.get("load") or {}
        rate = load.get("request_rate")
        shape = (f"load: rate {'inf' if rate is None else f'{rate:g}/s'}, burstiness {load.get('burstiness', 1):g}, "
                 f"{load.get('max_concurrency')} in flight")
        return SpeedContext(latency_scope="client", throughput_scope=shape, prefix_caching=served.get("prefix_caching"))
    caching = backend.args.get("prefix_caching", backend.args.get("enable_prefix_caching"))
    batch = backend.args.get("max_num_seqs", backend.args.get("batch_size"))
    measured = [scope for scope in timing_scopes if scope != "none"]
    return SpeedContext(latency_scope="batch" if "batch" in measured else "engine" if measured else None,
                        throughput_scope=f"closed batch: every request submitted at once, {batch} in flight",
                        prefix_caching=caching if isinstance(caching, bool) else None)
