"""Input readers: trial tables (CSV today) -> a validated ``TrialTable``."""
