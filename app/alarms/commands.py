"""Operator alarm actions as Commands (target "site.alarms"), executed by the thread that owns the
AlarmManager when it drains its command queue, so the GUI never touches the manager directly and
every action reaches the audit log as a CommandResult.

Actions and values (user and reason travel in the Command itself):
  ack                 value: tag              ack_all            value: list of tags
  shelve              value: {"tag": tag, "duration_s": seconds or None (one-shot)}; reason required
  unshelve            value: tag              return_to_service  value: tag
  out_of_service      value: tag; reason required
  reset               value: {"tag": tag, "authorised": bool (from the user's role)}
"""
from __future__ import annotations

from app.alarms.manager import AlarmManager
from app.alarms.model import AlarmTransition
from app.core.commands import Command, CommandResult, CommandStatus
from app.core.errors import UserError

TARGET = "site.alarms"


def execute(manager: AlarmManager, command: Command, now: float) -> CommandResult:
    """Apply one alarm command at time `now`. ACCEPTED with the transitions as `readback` (a tuple,
    possibly empty for an ack that found nothing to acknowledge); REJECTED with the reason when the
    action is refused or malformed."""
    try:
        transitions = _apply(manager, command, now)
    except UserError as exc:
        return CommandResult(command, CommandStatus.REJECTED, str(exc))
    message = "; ".join(t.message for t in transitions) or f"{command.action}: nothing to do"
    return CommandResult(command, CommandStatus.ACCEPTED, message, tuple(transitions))


def _apply(m: AlarmManager, c: Command, now: float) -> list[AlarmTransition]:
    v = c.value
    if c.action == "ack":
        t = m.ack(_tag(v), c.user, now)
        return [t] if t else []
    if c.action == "ack_all":
        if not isinstance(v, (list, tuple)):
            raise UserError("ack_all needs a list of alarm tags as its value")
        return m.ack_all([_tag(tag) for tag in v], c.user, now)
    if c.action == "shelve":
        v = _dict(v, c.action, "duration_s")
        duration = v.get("duration_s")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float))):
            raise UserError(f"shelve duration_s must be a number of seconds or None, got {duration!r}")
        return [m.shelve(_tag(v["tag"]), c.user, c.reason, now, duration)]
    if c.action == "unshelve":
        return [m.unshelve(_tag(v), c.user, now)]
    if c.action == "out_of_service":
        return [m.set_out_of_service(_tag(v), c.user, c.reason, now)]
    if c.action == "return_to_service":
        return [m.return_to_service(_tag(v), c.user, now)]
    if c.action == "reset":
        v = _dict(v, c.action, "authorised")
        if "authorised" not in v:
            raise UserError("alarm command 'reset' is missing 'authorised' (whether the user's role may reset)")
        return [m.reset(_tag(v["tag"]), c.user, v["authorised"] is True, now)]
    raise UserError(f"unknown alarm action {c.action!r}")


def _dict(value: object, action: str, other: str) -> dict:
    if not isinstance(value, dict) or "tag" not in value:
        raise UserError(f"alarm command {action!r} needs a dict value with 'tag' and {other!r}, got {value!r}")
    return value


def _tag(value: object) -> str:
    if not isinstance(value, str):
        raise UserError(f"alarm command needs an alarm tag (a string), got {value!r}")
    return value
