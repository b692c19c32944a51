#!/usr/bin/env node
// tit_for_tat is a Terrarium agent for the repeated_game world, written with
// the official NATS JavaScript client (@nats-io/transport-node): in every
// match it cooperates first, then copies the opponent's last move.
//
// It follows docs/protocol.md step by step: it reads the TERRARIUM_*
// environment, connects with its own credentials and inbox prefix (no
// automatic reconnect), subscribes to its own subjects and the world
// broadcasts, says hello as a request until the host answers, answers each
// obs with an act for the same tick, and on stop or end says bye, flushes,
// closes its connection and exits 0. SIGTERM also ends it with 0. A lost connection or a
// message from the wrong bus ends it with 1.
//
// Install its one dependency (npm ci in this directory), then name it in a
// scenario with runtime = "nats", command = "node" and
// args = ["/absolute/path/to/tit_for_tat.mjs"].

import process from "node:process";
import { connect, errors } from "@nats-io/transport-node";

const NAME = "tit_for_tat.mjs";
const SCHEMA_VERSION = 1;

function fail(msg, err) {
  console.error(`${NAME}: ${msg}${err ? `: ${err.message ?? err}` : ""}`);
  process.exit(1);
}

function getenv(name) {
  const v = process.env[name];
  if (!v) fail(`${name} is not set`);
  return v;
}

const ID_PATTERN = /^[A-Za-z0-9_-]+$/;
const url = getenv("TERRARIUM_NATS_URL");
const user = getenv("TERRARIUM_NATS_USER");
const pass = getenv("TERRARIUM_NATS_PASSWORD");
const inboxPrefix = getenv("TERRARIUM_INBOX_PREFIX");
const run = getenv("TERRARIUM_RUN");
const id = getenv("TERRARIUM_AGENT_ID");
if (!ID_PATTERN.test(run) || !ID_PATTERN.test(id)) {
  fail(`run ${JSON.stringify(run)} or agent id ${JSON.stringify(id)} is not made of A-Z a-z 0-9 _ -`);
}

// decide is the strategy: one move per match, C first, then the opponent's last.
function decide(obs) {
  const moves = {};
  for (const m of obs?.matches ?? []) {
    moves[m.match] = m.them && m.them.length > 0 ? m.them.slice(-1) : "C";
  }
  return { moves };
}

let seq = 0;
function envelope(kind, tick, data) {
  const e = { v: SCHEMA_VERSION, kind, run, agent: id, tick, seq: ++seq };
  if (data !== undefined) e.data = data;
  return JSON.stringify(e);
}
const agentSubject = (kind) => `sim.${run}.agent.${id}.${kind}`;

// decode parses a message from the host and checks it is for this run.
function decode(msg) {
  let e;
  try {
    e = JSON.parse(msg.string());
  } catch (err) {
    throw new Error(`bad message on ${msg.subject}`, { cause: err });
  }
  if (e === null || typeof e !== "object" || e.v !== SCHEMA_VERSION || e.run !== run) {
    throw new Error(`message on ${msg.subject} is not a v${SCHEMA_VERSION} envelope of run ${run}: ${msg.string().slice(0, 200)}`);
  }
  return e;
}

let nc;
try {
  nc = await connect({ servers: url, user, pass, inboxPrefix, name: id, reconnect: false });
} catch (err) {
  fail(`connect to ${url}`, err);
}

let finishing = false;
// finish says bye, flushes and closes the connection, then exits with code.
async function finish(code, why) {
  if (finishing) return;
  finishing = true;
  if (why) console.error(`${NAME}: ${why}`);
  try {
    if (!nc.isClosed()) {
      nc.publish(agentSubject("bye"), envelope("bye", 0));
      await nc.flush(); // what was published has reached the server
      await nc.close(); // not drain: see "Stopping" in docs/protocol.md
    }
  } catch (err) {
    console.error(`${NAME}: close`, err.message ?? err);
  }
  process.exit(code);
}

// The host's second way of stopping an agent.
process.on("SIGTERM", () => finish(0, "SIGTERM"));
process.on("SIGINT", () => finish(0, "SIGINT"));

// Losing the connection (the server closed it, the host is gone) ends the run
// for this agent.
nc.closed().then((err) => {
  if (!finishing) {
    finishing = true;
    fail("connection to the bus lost", err);
  }
});

// Asynchronous errors (a refused publish or subscription) are only logged.
(async () => {
  for await (const s of nc.status()) {
    if (s.type === "error") console.error(`${NAME}: bus error:`, s.error?.message ?? s.error);
  }
})();

function onMessage(err, msg) {
  if (finishing) return;
  if (err) {
    finish(1, `subscription: ${err.message ?? err}`);
    return;
  }
  let e;
  try {
    e = decode(msg);
  } catch (err) {
    finish(1, err.message);
    return;
  }
  switch (e.kind) {
    case "obs":
      nc.publish(agentSubject("act"), envelope("act", e.tick, decide(e.data)));
      break;
    case "stop":
    case "end":
      finish(0);
      break;
    default:
      // Unknown kinds are ignored: new ones may be added.
      break;
  }
}

// Subscriptions first, on the connection that sends the hello: once the host
// answers the hello, both are registered at the server.
nc.subscribe(`sim.${run}.to.${id}.>`, { callback: onMessage });
nc.subscribe(`sim.${run}.world.>`, { callback: onMessage });

const hello = envelope("hello", 0, { sdk: "node", client: "@nats-io/transport-node", pid: process.pid });
for (;;) {
  try {
    const reply = await nc.request(agentSubject("hello"), hello, { timeout: 2000 });
    decode(reply);
    break;
  } catch (err) {
    if (finishing) break;
    const again = (err instanceof errors.RequestError && err.isNoResponders()) || err instanceof errors.TimeoutError;
    if (!again) await finish(1, `hello: ${err.message ?? err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
