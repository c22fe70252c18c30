"""Credit Commons."""
