"""Figures (matplotlib) and the self-contained HTML report."""

from orbitml.report.figures import class_map_figure, false_colour_figure, spectra_figure, stretch_3sigma
from orbitml.report.html import Report

__all__ = ["Report", "class_map_figure", "false_colour_figure", "spectra_figure", "stretch_3sigma"]
