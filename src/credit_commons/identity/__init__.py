"""Identity: Indian identifier validation and normalisation before pseudonymisation."""
