"""The fraud model stack: config, FraudModel (fit / save / load), evaluation, ablation."""
