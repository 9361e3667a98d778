"""Point-in-time features: entity history, behaviour and neighbour windows, robust features, graph windows."""
