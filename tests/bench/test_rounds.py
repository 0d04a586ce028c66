"""Rounds of the bench add up: each cell of the table sums its windows, flows, CPU and latencies."""

from __future__ import annotations

import pytest

from tests.bench.test_smoke import require_load_generator


def test_rounds_are_summed_per_cell() -> None:
    require_load_generator()
    from bench.loadgen import Outcome
    from bench.run import Bench

    bench = object.__new__(Bench)  # no servers: only the bookkeeping is under test
    bench._cells = {}
    bench._say = lambda text: None  # type: ignore[method-assign]
    slow, fast = Outcome(latencies=[0.020] * 100, window=5.0), Outcome(latencies=[0.010] * 300, window=5.0)
    slow.errors["timeout"] += 2
    bench._add_row("sso", "validate", 8, slow, server_cpu=0.2, slapd_cpu=0.0, generator_cpu=1.0)
    bench._add_row("ceiling", "validate", 8, fast, server_cpu=0.3, slapd_cpu=0.0, generator_cpu=1.0)
    bench._add_row("sso", "validate", 8, fast, server_cpu=0.6, slapd_cpu=0.1, generator_cpu=2.0)
    sso, ceiling = bench.rows()
    assert (sso.target, ceiling.target) == ("sso", "ceiling")  # first-measured order
    assert sso.flows == 400 and sso.window == 10.0 and sso.rate == pytest.approx(40.0)
    assert sso.server_cpu_ms == pytest.approx(2.0)  # 0.8 s of CPU over 400 flows
    assert sso.slapd_cpu_ms == pytest.approx(0.25)
    assert sso.generator_cpu_pct == pytest.approx(30.0)
    assert sso.errors == {"timeout": 2}
    assert sso.p99_ms == pytest.approx(20.0) and sso.p50_ms == pytest.approx(10.0)
    assert ceiling.flows == 300 and ceiling.window == 5.0
