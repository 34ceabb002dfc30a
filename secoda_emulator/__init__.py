"""Emulator of Secoda's REST API: a generated workspace served over HTTP.

    from secoda_emulator import EmulatorServer, Faults, Workspace
"""
from .server import EmulatorServer, Faults
from .workspace import Workspace

__all__ = ["EmulatorServer", "Faults", "Workspace"]
