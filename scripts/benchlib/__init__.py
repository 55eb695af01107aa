"""The machinery behind scripts/bench, by job:

common     constants, logging, the clean-up of everything started
servers    CPU placement, fd limits, ports, starting and stopping servers, peers
isolation  the server's CPU quota (cgroups) and the MTU namespace (--mtu)
shapes     the request shapes: TFB's json and plaintext, HttpArena's profiles
client     one-shot validation and the bounded load generator of --profile
stats      the `stats:` tables chopin prints with --stats
load       wrk runs, levels, the load sequence
profile    callgrind and strace passes (--profile)
report     summaries, markdown, CSV/JSON, the gnuplot plot
cli        flags and main()
"""
