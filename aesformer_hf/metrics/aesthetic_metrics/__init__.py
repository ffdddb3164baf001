"""The aesthetic metrics `evaluate` module (load its folder with ``evaluate.load``)."""
