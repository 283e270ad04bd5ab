// Decodes server frames with the released client's own schemas (`@livestore/sync-cf` 0.4.0, Effect 3).
//
//   node check_frames.mjs < frames.jsonl
//
// Each input line is {"tag": "<RPC tag, e.g. SyncWsRpc.Push>", "frame": <a frame the server sent>}.
// Each output line is {"ok": true, "decoded": ...} or {"ok": false, "error": "..."}: `Chunk`
// values are decoded as the RPC's stream items, `Exit`s with `Rpc.exitSchema` of the RPC (so a
// failure's error must be one the RPC declares), `Defect`s with `Schema.Defect`.
// The test copies this file next to the node_modules it imports from.
import * as Rpc from '@effect/rpc/Rpc'
import * as RpcSchema from '@effect/rpc/RpcSchema'
import { Option, Schema } from 'effect'
import * as readline from 'node:readline'

import { SyncHttpRpc } from './node_modules/@livestore/sync-cf/dist/common/http-rpc-schema.js'
import { SyncWsRpc } from './node_modules/@livestore/sync-cf/dist/common/ws-rpc-schema.js'

const rpcs = new Map([...SyncWsRpc.requests, ...SyncHttpRpc.requests])

const describe = (value) => JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v)))

const check = ({ tag, frame }) => {
  if (frame._tag === 'Pong') return { pong: true }
  if (frame._tag === 'Defect') {
    const defect = Schema.decodeUnknownSync(Schema.Defect)(frame.defect)
    return { defect: defect instanceof Error ? { name: defect.name, message: defect.message } : describe(defect) }
  }
  const rpc = rpcs.get(tag)
  if (rpc === undefined) throw new Error(`no RPC ${tag}`)
  if (frame._tag === 'Chunk') {
    const streamSchemas = RpcSchema.getStreamSchemas(rpc.successSchema.ast)
    if (Option.isNone(streamSchemas)) throw new Error(`${tag} is not a stream, yet got a Chunk`)
    const items = Schema.decodeUnknownSync(Schema.NonEmptyArray(streamSchemas.value.success))(frame.values)
    return { chunk: items.map((item) => ({ events: item.batch.length, pageInfo: item.pageInfo._tag })) }
  }
  if (frame._tag === 'Exit') {
    const exit = Schema.decodeUnknownSync(Rpc.exitSchema(rpc))(frame.exit)
    if (exit._tag === 'Success') return { exit: 'Success' }
    const cause = exit.cause
    if (cause._tag === 'Fail') return { exit: 'Fail', error: cause.error._tag, fields: describe(cause.error) }
    return { exit: cause._tag }
  }
  throw new Error(`unexpected frame ${frame._tag}`)
}

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue
  try {
    process.stdout.write(`${JSON.stringify({ ok: true, decoded: check(JSON.parse(line)) })}\n`)
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(error?.message ?? error) })}\n`)
  }
}
