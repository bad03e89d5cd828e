"""Demo data: a seeded receivables export as of a date, plus hidden ground truth for evaluation."""

from relance.demo.generate import LANDING_ENTITIES, DemoSummary, generate_demo
from relance.demo.landing_files import arrow_schema

__all__ = ["LANDING_ENTITIES", "DemoSummary", "arrow_schema", "generate_demo"]
