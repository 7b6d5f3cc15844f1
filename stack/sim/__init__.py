"""`tcpstack sim`: the real TCP core over a simulated bottleneck, in virtual time (docs/sim.md).

`events.py` is the clock and event queue; `aqm.py` the bottleneck's queues (drop-tail, CoDel);
`loss.py` random and bursty loss; `link.py` the bottleneck and the wire; `flows.py` what a `--flow`
asks for; `engine.py` runs connections over the link; `report.py` the summary; `cli.py` the command.
"""
