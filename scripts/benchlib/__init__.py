"""The code of the Python scripts in scripts/: each of them (scripts/bench,
scripts/churn-cost, ...) is a thin entry point that imports its module here,
so that the code sits in .py files where linters and `duplicates` see it.

By job:

common     constants, logging, errors, the clean-up of everything started
servers    CPU placement, fd limits, ports, starting and stopping servers, peers
isolation  the server's CPU quota (cgroups) and the MTU namespace (--mtu)
measure    what the measuring scripts share: the flags' one vocabulary (old
           spellings as aliases), a free port, CPU ticks, a pinned and capped
           server started and stopped
shapes     the request shapes: TFB's json and plaintext, HttpArena's profiles
client     one-shot validation and the bounded load generator of --profile
stats      the `stats:` tables chopin prints with --stats
load       wrk runs, levels, the load sequence
profile    callgrind and strace passes (--profile)
report     summaries, markdown, CSV/JSON, the gnuplot plot
checks     the PASS/FAIL/SKIP report of the validators

One module per script:

cli                 scripts/bench: flags and main()
churn_cost          scripts/churn-cost
kernel_profile      scripts/kernel-profile
wakeup_profile      scripts/wakeup-profile
idle_cost           scripts/idle-cost
verify              scripts/verify
httparena_validate  scripts/httparena-validate
tfb_export          scripts/tfb-export
httparena_export    scripts/httparena-export
check_doc_paths     scripts/check-doc-paths
"""
