"""The drivers' base layer: the vocabulary every driver and the queue manager share (errors, wire labels, the
spec a driver builds from, the driver contract, delays, queue-name rules, URLs, control state). It imports
nothing else of ``drivers``."""
