"""File reservations: which agent may edit which paths, taken atomically with task claims.

``patterns`` normalises paths and decides overlap (the same rules as
``distributor/store/lua/include/reservations.lua``), ``models`` holds what a reservation is,
``index`` answers "who holds this?" for many paths at once, ``queries`` reads the live ones and
``guard`` is the git pre-commit hook that refuses commits touching another agent's files.
"""
