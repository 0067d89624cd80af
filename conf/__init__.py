"""srbench's Hydra configs, installed as the package ``srbench_conf`` (pyproject.toml: package-dir) so that
Hydra finds them on its search path as ``pkg://srbench_conf`` (benchmark/searchpath.py); Hydra's package
config source needs this file."""
