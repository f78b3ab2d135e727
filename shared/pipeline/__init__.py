"""Glue between the ASL engine and the stages: stage execution, the registry, task runs."""
