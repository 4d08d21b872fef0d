"""Development tooling: `make run` (run.py), the launcher every test, the dev
server and the benchmark use to start the stack (stack.py), and `make bench`
(bench/)."""
