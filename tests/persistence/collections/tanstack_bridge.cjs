// Runs TanStack DB's own SQLite persistence adapter on a SQLite file, for the
// tests that check dohost's collection files are TanStack's (test_collections_tanstack_files.py).
//
// usage: node tanstack_bridge.cjs <node_modules dir>   (a JSON request on stdin)
// request: {"db": path, "schemaVersion": n, "steps": [{"op": ..., ...}]}
// reply:   {"results": [...]} on stdout
//
// The adapter is @tanstack/db-sqlite-persistence-core's createSQLiteCorePersistenceAdapter,
// the adapter @tanstack/cloudflare-durable-objects-db-sqlite-persistence wraps around
// ctx.storage.sql; here its SQLiteDriver runs on sql.js (SQLite compiled to wasm), so no
// native build is needed. The file is read at start and written back at the end.
//
// Values cross the process boundary as JSON with markers for what JSON lacks:
// {"$bigint": "12"}, {"$date": "<ISO>"}, {"$num": "NaN" | "Infinity" | "-Infinity" | "-0"}.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { createRequire } = require('node:module')

const modules = process.argv[2]
const load = createRequire(path.join(modules, 'dohost-bridge.cjs'))
const core = load('@tanstack/db-sqlite-persistence-core')
const initSqlJs = load('sql.js')

function fromWire(value) {
  if (Array.isArray(value)) return value.map(fromWire)
  if (value !== null && typeof value === 'object') {
    if ('$bigint' in value) return BigInt(value.$bigint)
    if ('$date' in value) return new Date(value.$date)
    if ('$num' in value) return value.$num === '-0' ? -0 : Number(value.$num)
    const out = {}
    for (const [k, v] of Object.entries(value)) out[k] = fromWire(v)
    return out
  }
  return value
}

function toWire(value) {
  if (typeof value === 'bigint') return { $bigint: value.toString() }
  if (value instanceof Date) return { $date: value.toISOString() }
  if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0))) {
    return { $num: Object.is(value, -0) ? '-0' : String(value) }
  }
  if (Array.isArray(value)) return value.map(toWire)
  if (value !== null && typeof value === 'object') {
    const out = {}
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toWire(v)
    return out
  }
  return value === undefined ? null : value
}

function makeDriver(db) {
  const query = async (sql, params = []) => {
    const statement = db.prepare(sql)
    try {
      statement.bind(params)
      const rows = []
      while (statement.step()) rows.push(statement.getAsObject())
      return rows
    } finally {
      statement.free()
    }
  }
  const driver = {
    exec: async (sql) => {
      db.exec(sql)
    },
    query,
    run: async (sql, params = []) => {
      await query(sql, params)
    },
    transaction: async (fn) => {
      db.exec('BEGIN IMMEDIATE')
      try {
        const result = await fn(driver)
        db.exec('COMMIT')
        return result
      } catch (error) {
        db.exec('ROLLBACK')
        throw error
      }
    },
  }
  return driver
}

function expression(node) {
  // A tiny expression language for loadSubset: ["ref", path...] | ["val", v] | [fn, args...]
  const { IR } = load('@tanstack/db')
  if (node[0] === 'ref') return new IR.PropRef(node.slice(1))
  if (node[0] === 'val') return new IR.Value(fromWire(node[1]))
  return new IR.Func(node[0], node.slice(1).map(expression))
}

async function main() {
  const request = JSON.parse(fs.readFileSync(0, 'utf8'))
  const SQL = await initSqlJs()
  const db = fs.existsSync(request.db) ? new SQL.Database(fs.readFileSync(request.db)) : new SQL.Database()
  const adapter = core.createSQLiteCorePersistenceAdapter({
    driver: makeDriver(db),
    schemaVersion: request.schemaVersion ?? 1,
    schemaMismatchPolicy: request.schemaMismatchPolicy ?? 'sync-absent-error',
  })
  const results = []
  for (const step of request.steps) {
    try {
      results.push({ ok: toWire(await run(adapter, step)) })
    } catch (error) {
      results.push({ error: { name: error.name, message: error.message } })
    }
  }
  fs.writeFileSync(request.db, Buffer.from(db.export()))
  db.close()
  process.stdout.write(JSON.stringify({ results }))
}

async function run(adapter, step) {
  switch (step.op) {
    case 'tableName':
      return core.createPersistedTableName(step.id, step.prefix ?? 'c')
    case 'encodeKey':
      return core.encodePersistedStorageKey(fromWire(step.key))
    case 'apply':
      return adapter.applyCommittedTx(step.collection, fromWire(step.tx))
    case 'ensureIndex':
      return adapter.ensureIndex(step.collection, step.signature, step.spec)
    case 'loadSubset': {
      const options = {}
      if (step.where) options.where = expression(step.where)
      return adapter.loadSubset(step.collection, options)
    }
    case 'scanRows':
      return adapter.scanRows(step.collection)
    case 'position':
      return adapter.getStreamPosition(step.collection)
    case 'pullSince':
      return adapter.pullSince(step.collection, step.fromRowVersion)
    case 'metadata':
      return adapter.loadCollectionMetadata(step.collection)
    default:
      throw new Error(`unknown bridge op ${step.op}`)
  }
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error))
  process.exit(1)
})
