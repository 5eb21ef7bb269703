"""What the detector and bot images share at run time: the kubelet/Prometheus HTTP
endpoints (`health`), one-line JSON logs (`logs`) and typed reads of the settings
environment variables (`env`).

Installed in both images (workloads/detector/Dockerfile, workloads/bot/Dockerfile);
imports nothing of ours, so neither workload depends on the other (import-linter
contracts in pyproject.toml).
"""
