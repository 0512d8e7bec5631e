"""The Redis plumbing: key names, Lua scripts, connections, and how operations reach Redis.

``keys`` names every key of a swarm, ``lua/`` holds one script per state change, ``scripts``
loads them, ``calls`` and ``executor`` drive the operations of the layers above (written once as
generators) on the sync and asyncio clients, ``client`` connects by URL, ``codec`` decodes
replies. May import only ``distributor.settings``, ``errors`` and ``log``, nothing above it.
"""
