"""Load test: concurrent users asking questions against one shared PolicyQA (as Streamlit sessions do).

Loopback only and bounded in users and time. Prints throughput, latency percentiles and errors,
next to the single-user p95 measured first on the same questions. Asserts nothing.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from eval.metrics import percentile
from rag.qa import PolicyQA

MAX_USERS = 64
MAX_SECONDS = 600


@dataclass
class LoadReport:
    users: int
    seconds: float
    think_s: float
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    single_p95_ms: float = 0.0

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_ms, 95)

    def lines(self) -> list[str]:
        ratio = self.p95_ms / self.single_p95_ms if self.single_p95_ms else 0.0
        return [
            f"users {self.users}, {self.seconds:.0f} s, think time mean {self.think_s:.1f} s",
            f"requests {self.requests}, throughput {self.requests / self.seconds:.1f} req/s, errors {len(self.errors)}",
            f"latency ms p50 {percentile(self.latencies_ms, 50):.1f}  p95 {self.p95_ms:.1f}  "
            f"p99 {percentile(self.latencies_ms, 99):.1f}  max {max(self.latencies_ms, default=0):.1f}",
            f"single-user p95 {self.single_p95_ms:.1f} ms; concurrent p95 is {ratio:.2f}x (target <= 3x)",
            *[f"error: {e}" for e in self.errors[:5]],
        ]


def _timed_ask(qa: PolicyQA, question: str) -> float:
    started = time.perf_counter()
    qa.ask(question)
    return (time.perf_counter() - started) * 1000


def run_load(
    qa: PolicyQA, questions: list[str], users: int = 8, seconds: float = 60, think_s: float = 1.0, seed: int = 0
) -> LoadReport:
    """`users` threads each ask, wait a random think time (mean `think_s`), ask again, until `seconds` pass."""
    users, seconds = max(1, min(users, MAX_USERS)), max(1.0, min(seconds, MAX_SECONDS))
    report = LoadReport(users, seconds, think_s)
    report.single_p95_ms = percentile([_timed_ask(qa, q) for q in questions], 95)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def user(index: int) -> None:
        rng = random.Random(seed + index)
        while time.monotonic() < deadline:
            question = rng.choice(questions)
            try:
                latency = _timed_ask(qa, question)
                with lock:
                    report.latencies_ms.append(latency)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    report.errors.append(f"{type(exc).__name__}: {exc} ({question[:30]})")
            with lock:
                report.requests += 1
            time.sleep(rng.uniform(0, 2 * think_s))

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(users)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.monotonic() - started
    return report
