"""leadprep: turn a sales team's CRM into coaching questions for the weekly pipeline review."""

__version__ = "0.2.0.dev0"
