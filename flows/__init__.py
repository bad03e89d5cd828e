"""Prefect 3 flows: orchestration only. Each step calls relance/, models/, expectations/ or dbt."""
