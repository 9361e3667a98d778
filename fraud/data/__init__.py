"""The canonical transactions frame, column mappings and presets, row checks with rejects, loading."""
