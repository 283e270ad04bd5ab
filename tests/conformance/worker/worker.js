// The oracle Worker: runs conformance cases against workerd's real ctx.storage.
//
// POST /run with {"cases": [{"id", "kind": "sql" | "kv", "ops": [...]}, ...]}
// runs each case in its own Durable Object (idFromName(case id)) of the
// SQLite-backed class (kind "sql") or the KV-backed one (kind "kv"), all
// cases of a batch concurrently, and answers {"results": {id: [step...]}}.
// POST /ids answers ctx.id / namespace questions (idFromName, newUniqueId,
// jurisdictions). Values travel in the tagged JSON described in
// tests/conformance/_values.py (inputs: null is what Pyodide makes of None,
// i.e. undefined; outputs: undefined, non-safe-integer numbers, BigInt,
// ArrayBuffer, Map, Date are tagged).
import { DurableObject } from "cloudflare:workers";

function input(v) {
  // Python value (tagged JSON) -> the JS value Pyodide hands to workerd.
  if (v === null) return undefined;
  if (Array.isArray(v)) return v.map(input);
  if (typeof v === "object") {
    if ("$repeat" in v) return v.$repeat[0].repeat(v.$repeat[1]);
    if ("$cat" in v) return v.$cat.map(input).join("");
    if ("$bytes" in v) return hexToBytes(v.$bytes.repeat(v.$times || 1));
    if ("$float" in v) return { nan: NaN, inf: Infinity, "-inf": -Infinity }[v.$float] ?? Number(v.$float);
    if ("$bigint" in v) return BigInt(v.$bigint);
    if ("$int" in v) {
      // Pyodide: an int beyond 2**53 crosses as a BigInt.
      const n = BigInt(v.$int);
      return n >= -(2n ** 53n) + 1n && n <= 2n ** 53n - 1n ? Number(n) : n;
    }
    if ("$dict" in v) {
      const o = {};
      for (const [k, x] of v.$dict) o[k] = input(x);
      return o;
    }
    if ("$date" in v) return new Date(v.$date);
    throw new Error("unknown tagged input " + JSON.stringify(v));
  }
  return v;
}

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function bytesToHex(buf) {
  const u8 = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let s = "";
  for (const b of u8) s += b.toString(16).padStart(2, "0");
  return s;
}

class Encoded {
  // Already tagged (per-step results of a cursor or a transaction).
  constructor(v) { this.v = v; }
}

function output(v) {
  // JS value -> tagged JSON (decoded on the Python side by _values.from_workerd).
  if (v instanceof Encoded) return v.v;
  if (v === undefined) return { $undef: 1 };
  if (v === null) return null;
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return Object.is(v, -0) ? 0 : v;
    return { $num: Number.isNaN(v) ? "nan" : v === Infinity ? "inf" : v === -Infinity ? "-inf" : String(v) };
  }
  if (typeof v === "bigint") return { $bigint: String(v) };
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return { $bytes: bytesToHex(v) };
  if (v instanceof Map) return { $map: [...v].map(([k, x]) => [output(k), output(x)]) };
  if (v instanceof Date) return { $date: v.getTime() };
  if (Array.isArray(v)) return v.map(output);
  if (typeof v === "object") return { $obj: Object.entries(v).map(([k, x]) => [k, output(x)]) };
  return { $other: String(v) };
}

function error(e) {
  return { err: { name: e && e.name, message: e && e.message } };
}

const STEP = {
  toArray: (c) => c.toArray(),
  one: (c) => c.one(),
  raw: (c) => c.raw().toArray(),
  rawNext: (c) => c.raw().next(),
  next: (c) => c.next(),
  iter: (c) => { const rows = []; for (const r of c) rows.push(r); return rows; },
  columnNames: (c) => c.columnNames,
  rowsRead: (c) => c.rowsRead,
  rowsWritten: (c) => c.rowsWritten,
};

class Runner {
  constructor(ctx) {
    this.ctx = ctx;
  }

  async run(ops, target) {
    const out = [];
    for (const op of ops) {
      try {
        out.push({ ok: output(await this.op(op, target)) });
      } catch (e) {
        out.push(error(e));
      }
    }
    return out;
  }

  runSync(ops) {
    const out = [];
    for (const op of ops) {
      try {
        const r = this.op(op, null);
        if (r instanceof Promise) {
          // An async op called (not awaited) inside transactionSync: it has taken effect.
          r.catch(() => {});
          out.push({ ok: { $promise: 1 } });
        } else {
          out.push({ ok: output(r) });
        }
      } catch (e) {
        out.push(error(e));
      }
    }
    return out;
  }

  op(op, txn) {
    const s = this.ctx.storage;
    const t = txn || s;
    const a = (name) => (name in op ? [input(op[name])] : []);
    switch (op.op) {
      case "exec": {
        const cur = s.sql.exec(input(op.sql), ...(op.args || []).map(input));
        const steps = [];
        for (const step of op.steps || []) {
          try {
            steps.push({ ok: output(STEP[step](cur)) });
          } catch (e) {
            steps.push(error(e));
          }
        }
        return new Encoded({ $steps: steps });
      }
      case "databaseSize": return s.sql.databaseSize;
      case "kv.get": return s.kv.get(input(op.key));
      case "kv.put": return s.kv.put(input(op.key), ...a("value"));
      case "kv.delete": return s.kv.delete(input(op.key));
      case "kv.list": return [...s.kv.list(...a("options"))];
      case "get": return t.get("keys" in op ? input(op.keys) : input(op.key), ...a("options"));
      case "put": return "entries" in op ? t.put(input(op.entries), ...a("options")) : t.put(input(op.key), ...a("value"));
      case "delete": return t.delete("keys" in op ? input(op.keys) : input(op.key));
      case "list": return t.list(...a("options"));
      case "deleteAll": return t.deleteAll();
      case "getAlarm": return t.getAlarm();
      case "setAlarm": return t.setAlarm(input(op.time));
      case "deleteAlarm": return t.deleteAlarm();
      case "bookmark": return s.getCurrentBookmark();
      case "bookmarkForTime": return s.getBookmarkForTime(input(op.time));
      case "rollback": return t.rollback();
      case "sql": return typeof s.sql;
      case "kv": return typeof s.kv;
      case "transactionSync": {
        const inner = [];
        let outcome;
        try {
          const v = s.transactionSync(() => {
            inner.push(...this.runSync(op.ops));
            if (op.throw) throw new Error("boom");
            return "done";
          });
          outcome = { ok: output(v) };
        } catch (e) {
          outcome = error(e);
        }
        return new Encoded({ $txn: [inner, outcome] });
      }
      case "transaction": return this.transaction(op);
      default: throw new Error("harness: unknown op " + op.op);
    }
  }

  async transaction(op) {
    const inner = [];
    let outcome;
    try {
      const v = await this.ctx.storage.transaction(async (txn) => {
        inner.push(...(await this.run(op.ops, txn)));
        if (op.throw) throw new Error("boom");
        return "done";
      });
      outcome = { ok: output(v) };
    } catch (e) {
      outcome = error(e);
    }
    return new Encoded({ $txn: [inner, outcome] });
  }
}

class Base extends DurableObject {
  async run(ops) {
    return new Runner(this.ctx).run(ops, null);
  }
  async alarm() {}
}

export class SqlObject extends Base {}
export class KvObject extends Base {}

function ids(env, ask) {
  const ns = env[ask.ns];
  try {
    switch (ask.q) {
      case "idFromName": {
        const id = ns.idFromName(input(ask.name));
        return { ok: [id.toString(), id.name === undefined ? null : id.name] };
      }
      case "idFromString": {
        const id = ns.idFromString(input(ask.text));
        return { ok: [id.toString(), id.name === undefined ? null : id.name] };
      }
      case "newUniqueId": {
        const id = ask.jurisdiction === undefined ? ns.newUniqueId() : ns.newUniqueId({ jurisdiction: input(ask.jurisdiction) });
        return { ok: [id.toString().length, /^[0-9a-f]{64}$/.test(id.toString()), id.jurisdiction === undefined ? null : id.jurisdiction] };
      }
      case "jurisdiction": {
        const sub = ns.jurisdiction(input(ask.jurisdiction));
        const id = sub.idFromName(input(ask.name));
        return { ok: [id.toString(), id.jurisdiction === undefined ? null : id.jurisdiction] };
      }
      case "equals": {
        return { ok: ns.idFromName(ask.a).equals(ns.idFromName(ask.b)) };
      }
    }
    throw new Error("harness: unknown id question " + ask.q);
  } catch (e) {
    return error(e);
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const body = await request.json();
    if (url.pathname === "/ids") {
      return Response.json({ results: body.asks.map((ask) => ids(env, ask)) });
    }
    const results = {};
    await Promise.all(
      body.cases.map(async (c) => {
        const ns = c.kind === "kv" ? env.KV : env.SQL;
        try {
          results[c.id] = await ns.get(ns.idFromName(c.id)).run(c.ops);
        } catch (e) {
          results[c.id] = [error(e)];
        }
      }),
    );
    return Response.json({ results });
  },
};
