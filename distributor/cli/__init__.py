"""The ``swarmqueue`` command line; each command group lives in its own module."""

from distributor.cli.agents import agents_group
from distributor.cli.app import main
from distributor.cli.events import COMMANDS as EVENT_COMMANDS
from distributor.cli.messages import COMMANDS as MESSAGE_COMMANDS
from distributor.cli.plans import plan_group
from distributor.cli.tasks import COMMANDS as TASK_COMMANDS
from distributor.demo.command import demo as demo_command

main.add_command(plan_group)
for _command in TASK_COMMANDS:
    main.add_command(_command)

main.add_command(agents_group)
for _command in MESSAGE_COMMANDS:
    main.add_command(_command)

for _command in EVENT_COMMANDS:
    main.add_command(_command)

main.add_command(demo_command)

__all__ = ["main"]
