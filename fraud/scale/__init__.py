"""Running train and file scoring on a Dask cluster (features by entity and by snapshot, XGBoost on Dask)."""
