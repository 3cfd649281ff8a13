"""The apps band: what a person runs beside the pipeline (detect, bench, capture, prelabel, sweep,
sample). Apps may use the pipeline and the library; nothing in the library imports an app."""
