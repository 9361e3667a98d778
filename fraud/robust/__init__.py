"""Robustness: threat model, attacks, adversarial defences, robustness report."""
