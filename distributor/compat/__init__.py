"""Drop-in replacements for the predecessor's APIs, on swarmqueue (a layer beside planning).

``from distributor.compat import WorkDistributor`` replaces
``from claudeswarm.workflows.work_distributor import WorkDistributor``; see
:mod:`distributor.compat.work_distributor`.
"""

from distributor.compat.work_distributor import Task, WorkDistributor

__all__ = ["Task", "WorkDistributor"]
