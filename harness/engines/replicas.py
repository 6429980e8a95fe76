"""The replicas of a served model: their URLs (one, a list, or @FILE), each one's load and latencies, and the pool
that sends each request to the least-loaded live replica and marks a failing one down for the rest of the run."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import ServerError
from harness.core.log import warn
from harness.engines.base import Generation
from harness.records.base import Percentiles

URL = re.compile(r"https?://[^/\s,]+(/\S*)?")


def parse_base_urls(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Replica URLs from one URL, a comma-separated list, a list, or `@FILE` (one URL a line, `#` comments): each
    checked to be http(s), trailing slashes dropped, no duplicates."""
    if value is None:
        return ()
    if isinstance(value, str) and value.startswith("@"):
        try:
            lines = Path(value[1:]).read_text().splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read the replica list {value[1:]}: {exc.strerror}") from None
        entries = [line for line in lines if not line.lstrip().startswith("#")]
    elif isinstance(value, str):
        entries = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(u, str) for u in value):
        entries = list(value)
    else:
        raise ValueError("give a URL, URL1,URL2,... or @FILE")
    urls = tuple(u.strip().rstrip("/") for u in entries if u.strip())
    if not urls:
        raise ValueError(f"no server URL in {value!r}")
    for url in urls:
        if not URL.fullmatch(url):
            raise ValueError(f"'{url}' is not an http(s) URL such as http://127.0.0.1:8000/v1")
    if len(set(urls)) < len(urls):
        raise ValueError(f"a replica is listed twice: {', '.join(urls)}")
    return urls


@dataclass(frozen=True)
class Down:
    """When and why a replica was marked down."""

    at_s: float  # seconds after the backend started
    after_completed: int
    after_failed_attempts: int
    attempts: int  # attempts of the request that gave up on it
    reason: str


@dataclass
class Replica:
    """One server: its load, what it finished, its latencies, and whether it was marked down."""

    url: str
    in_flight: int = 0
    completed: int = 0
    failed_attempts: int = 0
    down: Down | None = None
    ttft_s: list[float] = field(default_factory=list)
    e2e_s: list[float] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """Counts, when it was marked down, and TTFT and e2e percentiles, for run.json."""
        ttft, e2e = Percentiles.of(self.ttft_s), Percentiles.of(self.e2e_s)
        return {"url": self.url, "completed": self.completed, "failed_attempts": self.failed_attempts,
                "down": asdict(self.down) if self.down else None,
                "ttft_s": ttft.model_dump() if ttft else None, "e2e_s": e2e.model_dump() if e2e else None}


class ReplicaPool:
    """The replicas under one lock: each request goes to the least-loaded live one (fewest in flight, then fewest
    completed, then the first listed); one that fails is marked down for the rest of the run."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.replicas = [Replica(url) for url in urls]
        self.lock = threading.Lock()
        self.start = time.monotonic()

    def live(self) -> list[Replica]:
        """The replicas not marked down."""
        return [r for r in self.replicas if r.down is None]

    def acquire(self) -> Replica:
        """The least-loaded live replica, its in-flight count taken; ServerError when every replica is down."""
        with self.lock:
            live = self.live()
            if not live:
                raise ServerError(self._all_down())
            replica = min(live, key=lambda r: (r.in_flight, r.completed))
            replica.in_flight += 1
            return replica

    def release(self, replica: Replica, gen: Generation | None) -> None:
        """A request left the replica, finished (`gen`) or not."""
        with self.lock:
            replica.in_flight -= 1
            if gen is not None:
                replica.completed += 1
                if gen.timings.ttft_s is not None:
                    replica.ttft_s.append(gen.timings.ttft_s)
                if gen.timings.e2e_s is not None:
                    replica.e2e_s.append(gen.timings.e2e_s)

    def failed(self, replica: Replica, reason: str, lost: bool, attempt: int, spent: bool) -> bool:
        """Count a failed attempt; whether the request must leave the replica. It is marked down when its retries
        are `spent`, or at once on a `lost` connection while another replica is live (the last one gets retries)."""
        with self.lock:
            replica.failed_attempts += 1
            if replica.down is None and (spent or (lost and len(self.live()) > 1)):
                self.mark_down(replica, reason, attempt + 1)
                if self.live():
                    warn(f"replica {replica.url} marked down after {replica.completed} completed requests "
                         f"({reason}); its requests go to the other replicas")
            return replica.down is not None

    def mark_down(self, replica: Replica, reason: str, attempts: int) -> None:
        """Take a replica out of the rotation, noting when and why."""
        replica.down = Down(round(time.monotonic() - self.start, 3), replica.completed, replica.failed_attempts,
                            attempts, reason)

    def _all_down(self) -> str:
        if len(self.replicas) == 1:
            r = self.replicas[0]
            assert r.down is not None
            return f"server {r.url} failed {r.down.attempts} times: {r.down.reason}"
        return "server down: every replica failed: " + "; ".join(
            f"{r.url} ({r.down.reason} after {r.down.after_completed} completed)" for r in self.replicas if r.down)
