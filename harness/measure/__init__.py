"""Measurement: speed aggregation, the environment, GPU energy, cost, model sizes, `owb fit`, the roofline and
`owb bench`."""
