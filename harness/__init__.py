"""What tests and benchmarks share: the fake upstream, the app's processes, /proc readings.

- ``harness.fake_upstream``: a real loopback server speaking the upstream's wire format;
- ``harness.timed_upstream``: that server as a process of its own, recording when it sent
  each token (for benchmarks);
- ``harness.processes``: start the Procfile's processes and the timed upstream, free
  ports, health waits, stopping process groups;
- ``harness.paas``: the Procfile run by honcho, as a PaaS runs it;
- ``harness.procfs``: CPU, RSS, PSS and scheduler readings of a process from /proc.
"""
