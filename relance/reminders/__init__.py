"""Reminder planning: which open invoice gets which reminder, on which channel, today.

Pure functions over the scored worklist (``serving.collection_worklist``); sending lives in
``relance.channels`` and the exactly-once ledger in ``relance.delivery``.
"""

from relance.reminders.policy import PolicyConfig, plan_reminders, reminder_key

__all__ = ["PolicyConfig", "plan_reminders", "reminder_key"]
