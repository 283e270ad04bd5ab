// A command-line LiveStore sync client, built on the released `@livestore/sync-cf` client.
//
//   node livestore_client.mjs <role> <url> <storeId> [args...]
//
// Roles (each prints one JSON object per line on stdout):
//   listen <n> [ws|http]  live pull from the start; prints {"ready":true} once phase 1
//                         is done, then {"event":...} per event; exits after <n> events;
//                         when the connection drops it prints {"reconnecting":true} and
//                         pulls again from the last event it got
//   push <from> <count>   pushes events <from>..<from+count-1> (each the parent of the next),
//                         printing {"pushed":[seqNums]}; then pushes a stale event
//                         (a different event 1 on the root) and prints {"stale":<error>}
//   pull [ws|http]        a non-live pull from the start; prints {"events":[...]}
//
// Node 20 needs --experimental-websocket (no global WebSocket before Node 22).
// The modules are found from this file's folder (the test copies it next to
// its node_modules).
import { makeHttpSync, makeWsSync } from '@livestore/sync-cf/client'
import { Cause, Effect, FetchHttpClient, KeyValueStore, Layer, Option, Stream } from '@livestore/utils/effect'

const [role, url, storeId, ...args] = process.argv.slice(2)
const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)

const backendFor = (transport) =>
  (transport === 'http' ? makeHttpSync({ url, ping: { enabled: false } }) : makeWsSync({ url }))({
    storeId,
    clientId: `node-${role}-${process.pid}`,
    payload: undefined,
  })

const event = (seqNum, parentSeqNum) => ({
  name: 'todoCreated-v1',
  args: { id: `todo-${seqNum}`, text: `from node, event ${seqNum}` },
  seqNum,
  parentSeqNum,
  clientId: `node-${process.pid}`,
  sessionId: 'session-node',
})

const programs = {
  listen: (count, transport = 'ws') =>
    Effect.gen(function* () {
      const backend = yield* backendFor(transport)
      yield* backend.connect
      let seen = 0
      let last = Option.none()
      let ready = false
      // Like LiveStore's sync processor: when the connection drops (a restart of the
      // server), pull again from the last event received, until <count> have come.
      while (seen < Number(count)) {
        const cursor = Option.map(last, (seqNum) => ({ eventSequenceNumber: seqNum, metadata: Option.none() }))
        const exit = yield* backend.pull(cursor, { live: true }).pipe(
          Stream.tap((item) =>
            Effect.sync(() => {
              for (const { eventEncoded } of item.batch) {
                out({ event: eventEncoded })
                seen += 1
                last = Option.some(eventEncoded.seqNum)
              }
              if (!ready && item.pageInfo._tag === 'NoMore') {
                ready = true
                out({ ready: true })
              }
            }),
          ),
          Stream.takeUntil(() => seen >= Number(count)),
          Stream.runDrain,
          Effect.exit,
        )
        if (exit._tag === 'Failure') {
          const failure = Cause.failureOption(exit.cause)
          if (Option.isNone(failure) || failure.value._tag !== 'IsOfflineError') return yield* exit
          out({ reconnecting: true })
          yield* Effect.sleep('300 millis')
        }
      }
    }),
  push: (from, count) =>
    Effect.gen(function* () {
      const backend = yield* backendFor('ws')
      // Learn the backend id (and the head) as the client does before pushing.
      yield* backend.pull(Option.none()).pipe(Stream.runDrain)
      const first = Number(from)
      const batch = Array.from({ length: Number(count) }, (_, i) => event(first + i, first + i - 1))
      yield* backend.push(batch)
      out({ pushed: batch.map((e) => e.seqNum) })
      // A different first event on the root: the server is ahead of it.
      const stale = yield* backend.push([{ ...event(1, 0), args: { id: 'stale', text: 'written offline' } }]).pipe(Effect.flip)
      out({ stale: { _tag: stale._tag, minimumExpectedNum: stale.minimumExpectedNum, providedNum: stale.providedNum } })
    }),
  pull: (transport = 'ws') =>
    Effect.gen(function* () {
      const backend = yield* backendFor(transport)
      const items = yield* backend.pull(Option.none()).pipe(Stream.runCollect)
      out({ events: [...items].flatMap((item) => item.batch.map((b) => b.eventEncoded)) })
    }),
}

const program = programs[role]
if (program === undefined) {
  console.error(`unknown role ${role}; expected one of ${Object.keys(programs).join(', ')}`)
  process.exit(2)
}

await program(...args).pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(FetchHttpClient.layer, KeyValueStore.layerMemory)),
  Effect.timeout('60 seconds'),
  Effect.runPromise,
).then(
  () => process.exit(0),
  (error) => {
    console.error(String(error?.stack ?? error))
    process.exit(1)
  },
)
