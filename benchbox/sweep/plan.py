"""Planning a sweep: the grid of serving configs x loads, in the order they are measured."""

from __future__ import annotations

from benchbox.schema import Cell, Load, ServingConfig, SweepSpec, cell_id, replace


def configs(spec: SweepSpec) -> list[ServingConfig]:
    """Every serving config of the grid, grouped by device and threads (one worker group each);
    each config at every precision of the spec, fp32 first."""
    return [
        replace(cfg, precision=precision) if precision != "fp32" else cfg
        for cfg in _fp32_configs(spec)
        for precision in spec.precisions
    ]


def _fp32_configs(spec: SweepSpec) -> list[ServingConfig]:
    out = []
    for device in spec.devices:
        for threads in spec.threads:
            for instances in spec.instances:
                if spec.dynamic_batching:
                    for db in spec.dynamic_batching:
                        out.append(
                            ServingConfig(
                                device, threads, instances, 1, db, io_binding=spec.io_binding
                            )
                        )
                    continue
                for batch in spec.batch_sizes:
                    out.append(
                        ServingConfig(device, threads, instances, batch, io_binding=spec.io_binding)
                    )
    return out


def loads(spec: SweepSpec) -> list[Load]:
    """The load levels each config is measured under, lightest first."""
    if spec.load_kind == "open":
        return [
            Load("open", c, rate_rps=r, distribution=spec.arrival, profile=spec.rate_profile)
            for c in spec.concurrencies
            for r in spec.rates_rps
        ]
    if spec.load_kind == "trace":
        rate = spec.rates_rps[0] if spec.rates_rps else None
        return [Load("trace", c, rate_rps=rate, trace=spec.trace) for c in spec.concurrencies]
    if spec.load_kind == "offline":
        return [Load("offline", concurrency=c) for c in spec.concurrencies]
    return [Load("closed", concurrency=c) for c in spec.concurrencies]


def grid(spec: SweepSpec) -> list[Cell]:
    """All cells of the grid, pending."""
    return [
        Cell(id=cell_id(cfg, load), config=cfg, load=load)
        for cfg in configs(spec)
        for load in loads(spec)
    ]


def group_key(config: ServingConfig) -> tuple:
    """Cells sharing a device and session options run in one worker (one process each)."""
    return (config.device, config.intra_op_threads, config.graph_optimization, config.io_binding)
