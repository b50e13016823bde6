"""Actor runtime: one actor per device, with mailboxes and a supervisor."""

from gateway.actors.device import DeviceActor, Effects
from gateway.actors.system import ActorStats, ActorSystem, build_operator

__all__ = ["ActorStats", "ActorSystem", "DeviceActor", "Effects", "build_operator"]
