"""A local stand-in for the Elise provider API, used only when asked for by name.

`pos-agent sandbox` serves the documented endpoints (docs/provider.md §3–§8) on loopback with
real persistence, real ECDSA signatures and switchable faults, so the demo, the tests and the
benchmarks exercise the adapter over real HTTP. Nothing in the daemon imports this package.
"""
