#!/usr/bin/env python3
"""Tit for tat for Terrarium's repeated_game world, as a stdio-runtime agent.

Python 3 standard library only. The host writes one JSON object per line to
stdin and reads one JSON object per line from stdout (docs/protocol.md, "The
stdio runtime"):

    host:  {"type":"hello","v":1,"agent":"tft","run":"R","seed":42}
    host:  {"type":"obs","tick":3,"deadline":"...","data":{"round":3,...}}
    agent: {"type":"act","tick":3,"data":{"moves":{"m05":"D"}}}
    host:  {"type":"stop","tick":200}

In every match it cooperates first, then copies the opponent's last move.
Only protocol lines go to stdout; diagnostics go to stderr (the agent's log).
"""

import json
import signal
import sys


def decide(obs):
    """The action for one observation (world/game/doc.go): one move per match."""
    moves = {}
    for m in obs.get("matches", []):
        them = m.get("them", "")
        moves[m["match"]] = them[-1] if them else "C"
    return {"moves": moves}


def send(msg):
    # One line per message, flushed at once: stdout is a pipe, so Python
    # would otherwise buffer it and the host would wait in vain.
    sys.stdout.write(json.dumps(msg, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main():
    # SIGTERM is the host's second way to stop an agent: exit cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        line = sys.stdin.readline()
        if not line:  # EOF: the host closed stdin, the run is over
            return 0
        try:
            msg = json.loads(line)
        except ValueError:
            print("tit_for_tat: not JSON: %r" % line[:200], file=sys.stderr)
            continue
        if not isinstance(msg, dict):
            continue
        kind = msg.get("type")
        if kind == "hello":
            print("tit_for_tat: agent %s in run %s" % (msg.get("agent"), msg.get("run")), file=sys.stderr)
        elif kind == "obs":
            send({"type": "act", "tick": msg["tick"], "data": decide(msg.get("data") or {})})
        elif kind == "stop":
            print("tit_for_tat: stop after %s ticks" % msg.get("tick"), file=sys.stderr)
            return 0
        # Other types (added later) are ignored.


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
