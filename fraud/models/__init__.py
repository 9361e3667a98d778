"""The learned parts: snapshot GNN, autoencoder, XGBoost booster, exact TreeSHAP."""
