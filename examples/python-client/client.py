#!/usr/bin/env python3
"""A peerlb client in plain Python (standard library only).

Keeps the live list of a service's servers from its agent with blocking queries on
GET /v1/servers (see HTTP-API.md), and sends UDP datagrams to servers it picks itself by power of
two choices on the reported load (per unit of weight, plus what it sent since the report).

    python3 client.py --agent http://127.0.0.1:7946 --service game --count 100 --interval-ms 20

Prints one line per event, for people and tests:
    view <index> <id,id,...>     a new view (healthy servers)
    sent <id> <host>:<port>      a datagram sent
"""
import argparse
import json
import random
import socket
import sys
import threading
import time
import urllib.request

# Two threads print (the watch and the sender): print() writes the text and the newline apart, so
# without a lock one thread's line can land inside the other's and a reader loses a line.
_out = threading.Lock()


def say(line):
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class View:
    def __init__(self):
        self.lock = threading.Lock()
        self.servers = []          # healthy records with a udpPort
        self.sent = {}             # id -> datagrams sent since the server's last report (seq)
        self.seq = {}
        self.ready = threading.Event()

    def update(self, records):
        with self.lock:
            self.servers = [r for r in records if r.get("health") == "healthy" and r.get("udpPort")]
            for r in self.servers:
                seq = (r.get("load") or {}).get("seq")
                if self.seq.get(r["id"]) != seq:
                    self.seq[r["id"]] = seq
                    self.sent[r["id"]] = 0
        self.ready.set()

    def cost(self, r):
        load = r.get("load") or {}
        active = max(load.get("connections", 0), load.get("sessions", 0)) + self.sent.get(r["id"], 0)
        return active / max(1, r.get("weight", 100))

    def pick(self):
        with self.lock:
            n = len(self.servers)
            if n == 0:
                return None
            if n == 1:
                s = self.servers[0]
            else:
                a, b = random.sample(self.servers, 2)
                s = b if self.cost(b) < self.cost(a) else a
            self.sent[s["id"]] = self.sent.get(s["id"], 0) + 1
            return s


def watch(agent, service, token, wait, view, stop):
    """Blocking queries until `stop`: each answer replaces the view; errors back off, bounded."""
    index = None
    backoff = 0.1
    while not stop.is_set():
        url = "%s/v1/servers?service=%s" % (agent, urllib.request.quote(service))
        if index is not None:
            url += "&index=%s&wait=%s" % (index, wait)
        req = urllib.request.Request(url)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=330) as res:
                records = json.load(res)
                index = res.headers.get("x-peerlb-index")
            view.update(records)
            ids = ",".join(r["id"] for r in view.servers)
            say("view %s %s" % (index, ids))
            backoff = 0.1
        except Exception as e:  # the agent restarts, a 429: wait, then ask again
            print("error %s" % e, file=sys.stderr, flush=True)
            index = None
            stop.wait(backoff)
            backoff = min(5.0, backoff * 2)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", default="http://127.0.0.1:7946")
    p.add_argument("--service", required=True)
    p.add_argument("--token", default=None)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval-ms", type=float, default=10)
    p.add_argument("--wait", default="5s", help="blocking query wait (e.g. 5s, 2m)")
    p.add_argument("--message", default="hello")
    a = p.parse_args()
    view, stop = View(), threading.Event()
    t = threading.Thread(target=watch, args=(a.agent.rstrip("/"), a.service, a.token, a.wait, view, stop), daemon=True)
    t.start()
    if not view.ready.wait(30):
        print("no answer from the agent", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(a.count):
        s = view.pick()
        if s is None:
            say("none")
        else:
            sock.sendto(a.message.encode(), (s["host"], s["udpPort"]))
            say("sent %s %s:%d" % (s["id"], s["host"], s["udpPort"]))
        time.sleep(a.interval_ms / 1000)
    stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
