"""Renderers: text, CSV and Markdown summaries (text), result tables (tables), figures (plots)
and the HTML report (report). Nothing here computes statistics."""
