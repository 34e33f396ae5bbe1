"""interview-debrief: grounded keep/decline reflections on job-interview notes."""

__version__ = "0.1.0"
