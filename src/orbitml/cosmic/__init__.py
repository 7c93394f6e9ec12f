"""cosmic: detect, categorise and count cosmic-ray hits in CCD frames."""
