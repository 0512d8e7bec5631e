"""Planning on top of tasks and messaging: the work distributor, feature decomposition
templates and the automatic announcements. May import every layer below it.
"""
