"""Views: Markdown and JSON for reflections, rankings, the digest and eval reports."""
