"""The course's own tooling: not needed to study the lesson."""
